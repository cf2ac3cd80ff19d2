"""Payments as the scenarios send and drain them: an API client's requests (with their
Idempotency-Key and its retries), the posting sweep run to the end, the integrity check."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, replace

from django.db import close_old_connections, connection
from django.test import Client

from api import scopes
from payments.ddb_models import queue_query
from payments.services import payments_post_due
from tests.factories import BranchFactory, make_api_client, make_loan

from .services import ledger_integrity

URL = "/api/v1/transactions"


@dataclass(frozen=True)
class ApiPayment:
    """One payment request and, once sent, what came back."""

    key: str
    body: dict
    status: int = 0
    code: str = ""
    retry_after: str | None = None
    txn_id: str | None = None
    replayed: bool = False

    def send(self, client: Client, api_key: str) -> ApiPayment:
        response = client.post(
            URL,
            data=json.dumps(self.body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Api-Key {api_key}",
            HTTP_IDEMPOTENCY_KEY=self.key,
        )
        data = response.json()
        return replace(
            self,
            status=response.status_code,
            code=data.get("error", {}).get("code", ""),
            retry_after=response.headers.get("Retry-After"),
            txn_id=data.get("txn_id"),
            replayed=response.headers.get("Idempotent-Replayed") == "true",
        )

    def send_until_done(
        self, client: Client, api_key: str, *, deadline: float, refusals: dict[str, int]
    ) -> ApiPayment:
        """What a well-behaved client does: the same request and key again after each
        Retry-After, until it is accepted. Counts the refusals met by code."""
        while True:
            answer = self.send(client, api_key)
            if answer.status == 201 or answer.retry_after is None or time.monotonic() > deadline:
                return answer
            refusals[answer.code] = refusals.get(answer.code, 0) + 1
            time.sleep(int(answer.retry_after))


def integration(*, loans: int) -> tuple[list, str]:
    """A branch with ``loans`` loans and an API client posting to it: (loans, raw key)."""
    branch = BranchFactory()
    _, api_key = make_api_client(
        scopes=(scopes.TRANSACTIONS_WRITE, scopes.TRANSACTIONS_READ), branches=[branch]
    )
    return [make_loan(branch=branch) for _ in range(loans)], api_key


def payments_for(loans: list, count: int, *, tag: str) -> list[ApiPayment]:
    """``count`` payments spread over ``loans``, each amount different, each its own key."""
    return [
        ApiPayment(
            f"{tag}-{uuid.uuid4()}",
            {
                "loan_account": loans[i % len(loans)].loan_number,
                "amount": f"{100 + i}.00",
                "mode": "CASH",
                "receipt_number": f"{tag}-{i}",
            },
        )
        for i in range(count)
    ]


class Sweeper(threading.Thread):
    """The posting sweep run again and again, as a Celery worker runs beat's task: Django's
    stale connections are closed around each run (as Celery's Django fix-up does), and a
    run that raises is recorded (``crashes``), as a failed task, before the next one."""

    def __init__(self, batch: int) -> None:
        super().__init__(daemon=True)
        self.batch = batch
        self.runs = 0
        self.outcomes: dict[str, int] = {}
        self.crashes: list[str] = []
        self.finish = threading.Event()

    def run(self) -> None:
        try:
            while not self.finish.is_set():
                close_old_connections()
                self.runs += 1
                try:
                    result = payments_post_due(limit=self.batch)
                except Exception as exc:
                    self.crashes.append(f"{type(exc).__name__}: {exc}")
                    result = {}
                close_old_connections()
                for outcome, count in result.items():
                    self.outcomes[outcome] = self.outcomes.get(outcome, 0) + count
                time.sleep(0.1)
        finally:
            connection.close()

    def wait_for(self, outcome: str, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.outcomes.get(outcome, 0) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    @staticmethod
    def total(sweepers: list[Sweeper], figure: str):
        """The sum over ``sweepers`` of ``runs``, ``crashes`` (a count) or ``outcomes``."""
        if figure == "outcomes":
            totals: dict[str, int] = {}
            for sweeper in sweepers:
                for outcome, count in sweeper.outcomes.items():
                    totals[outcome] = totals.get(outcome, 0) + count
            return totals
        return sum(len(s.crashes) if figure == "crashes" else s.runs for s in sweepers)


def drain_posting_queue(*, timeout: float = 60.0) -> dict[str, int]:
    """Run the posting sweep until nothing waits (backed-off items included)."""
    totals: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for outcome, count in payments_post_due(limit=100).items():
            totals[outcome] = totals.get(outcome, 0) + count
        waiting = [item for status in ("READY", "LEASED") for item in queue_query(status)]
        if not waiting:
            return totals
        time.sleep(0.5)
    raise AssertionError(f"the posting queue did not drain within {timeout:.0f}s: {totals}")


def assert_integrity(expected: int) -> str:
    """The integrity check agrees, over exactly ``expected`` transactions and postings;
    returns its summary line."""
    status, lines = ledger_integrity()
    assert status == 0, lines
    assert lines[-1].endswith(f"{expected} transactions, {expected} postings: agree"), lines
    return lines[-1]
