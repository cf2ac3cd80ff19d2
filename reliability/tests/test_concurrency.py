"""Many hands at once: duplicate submissions from concurrent clients, and two approvers
deciding the same thing at the same moment. Real servers and real Postgres; each scenario
prints its figures and ends with the payments integrity check reporting no difference.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlparse

import pytest
from django.db import connection
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from accounts.models import User
from api import scopes
from audit.models import AuditMessage
from core.money import to_paise
from mandates.services import mandate_stop_request, mandate_submit
from payments.ddb_models import TransactionItem, queue_count
from payments.models import Posting
from payments.services import payments_post_due
from reconciliation.models import Dbs
from reconciliation.services import dbs_submit, dcr_build, dcr_submit
from reliability.services import figures
from tests import factories as recon
from tests.factories import (
    BranchFactory,
    UserFactory,
    active_mandate,
    actors,
    draft_mandate,
    make_api_client,
    make_loan,
)

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


# --- 20 clients, the same 1,000 payments, the same keys ----------------------------------

CLIENTS, PAYMENTS, LOANS = 20, 1000, 50


@dataclass
class ClientLog:
    """What one client saw: the answer to each key, and how it came."""

    answers: dict[str, dict] = field(default_factory=dict)
    created: int = 0
    replayed: int = 0
    in_flight: int = 0
    unexpected: list[tuple[int, str]] = field(default_factory=list)


def _client(url: str, api_key: str, payments: list[tuple[str, dict]], log: ClientLog, start):
    """Send every payment once to completion: a 409 request_in_flight is retried (as its
    Retry-After asks, sooner here); a 201, first or replayed, completes it."""
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    start.wait()
    try:
        _send_all(conn, api_key, payments, log)
    except Exception as exc:  # reported with the others' answers
        log.unexpected.append((0, repr(exc)))
    finally:
        conn.close()


def _send_all(conn, api_key: str, payments: list[tuple[str, dict]], log: ClientLog) -> None:
    for key, body in payments:
        while True:
            conn.request(
                "POST",
                "/api/v1/transactions",
                body=json.dumps(body),
                headers={
                    "Authorization": f"Api-Key {api_key}",
                    "Idempotency-Key": key,
                    "Content-Type": "application/json",
                },
            )
            response = conn.getresponse()
            data = json.loads(response.read())
            if response.status == 409 and data["error"]["code"] == "request_in_flight":
                log.in_flight += 1
                time.sleep(0.05)
                continue
            if response.status != 201:
                log.unexpected.append((response.status, json.dumps(data)[:300]))
                break
            log.answers[key] = data
            if response.getheader("Idempotent-Replayed") == "true":
                log.replayed += 1
            else:
                log.created += 1
            break


def test_twenty_clients_sending_the_same_thousand_payments_store_and_post_each_once(
    app_server, celery_workers, wait_until, ledger_agrees
):
    """20 threads, each with its own keep-alive connection to gunicorn, send the same
    1,000 payments with the same Idempotency-Keys: half of them in the same order (so
    they collide on each key at the same moment), half in their own shuffled order (so
    they mostly meet a key already stored). A Celery worker posts meanwhile."""
    branch = BranchFactory()
    loans = [make_loan(branch=branch) for _ in range(LOANS)]
    _, api_key = make_api_client(scopes=(scopes.TRANSACTIONS_WRITE,), branches=[branch])
    payments = [
        (
            f"dup-{i:04d}-{random.getrandbits(32):08x}",
            {
                "loan_account": loans[i % LOANS].loan_number,
                "amount": f"{10 + i % 90}.{i % 100:02d}",
                "mode": "UPI",
                "receipt_number": f"U-{i}",
            },
        )
        for i in range(PAYMENTS)
    ]
    server = app_server(workers=3, threads=8)
    celery_workers.start(concurrency=2)

    logs = [ClientLog() for _ in range(CLIENTS)]
    start = threading.Event()
    threads = []
    for c, log in enumerate(logs):
        order = list(payments)
        if c % 2:
            random.Random(c).shuffle(order)
        threads.append(
            threading.Thread(target=_client, args=(server.url, api_key, order, log, start))
        )
    for thread in threads:
        thread.start()
    began = time.monotonic()
    start.set()
    for thread in threads:
        thread.join(300)
    burst = time.monotonic() - began
    assert not any(thread.is_alive() for thread in threads), "a client did not finish"

    assert [log.unexpected for log in logs] == [[]] * CLIENTS
    keys = [key for key, _ in payments]
    assert all(sorted(log.answers) == sorted(keys) for log in logs)
    # the first answer and its replays are the same, transaction id included
    per_key = {key: {json.dumps(log.answers[key], sort_keys=True) for log in logs} for key in keys}
    assert all(len(answers) == 1 for answers in per_key.values()), "two answers for one key"
    txn_ids = {logs[0].answers[key]["txn_id"] for key in keys}
    assert len(txn_ids) == PAYMENTS
    created = sum(log.created for log in logs)
    assert created == PAYMENTS  # exactly one client got the first response of each key
    stored = list(TransactionItem.scan())
    assert {t.txn_id for t in stored} == txn_ids
    amounts = {key: to_paise(Decimal(body["amount"])) for key, body in payments}
    assert sum(t.amount_paise for t in stored) == sum(amounts.values())

    drained = time.monotonic()
    wait_until(
        lambda: (
            Posting.objects.count() == PAYMENTS
            and queue_count("READY") == 0
            and queue_count("LEASED") == 0
        ),
        timeout=180,
        what=f"{PAYMENTS} postings\n{celery_workers.log_text()}",
    )
    drain = time.monotonic() - drained
    assert set(Posting.objects.values_list("txn_id", flat=True)) == txn_ids
    assert Counter(t.status for t in TransactionItem.scan()) == {"POSTED": PAYMENTS}

    requests = sum(log.created + log.replayed + log.in_flight for log in logs)
    figures(
        "20 clients, the same 1,000 payments",
        clients=CLIENTS,
        payments=PAYMENTS,
        requests=requests,
        requests_per_s=round(requests / burst),
        burst_s=round(burst, 1),
        created=created,
        replayed=sum(log.replayed for log in logs),
        in_flight_409=sum(log.in_flight for log in logs),
        transactions=len(stored),
        postings=Posting.objects.count(),
        queue_drained_after_burst_s=round(drain, 1),
        integrity=ledger_agrees(),
    )


# --- Two approvers deciding the same thing at once ---------------------------------------


@dataclass
class Contested:
    """Something waiting for one decision, the screen that takes it, and two approvers."""

    label: str
    obj: Model
    url: str
    approvers: tuple
    history: Callable[[], int]  # the workflow's own history rows of this object
    returning_writes_history: bool = True  # False: only carrying it out does

    @property
    def entity(self) -> str:
        return f"{self.obj._meta.label_lower}#{self.obj.pk}"


def _decide_at_once(contested: Contested, row_locks, wait_until) -> dict:
    """Both approvers press their button: approve for the first, return for the second.
    The object's row is locked by the test until both requests wait on it inside their
    decision's transaction (so they truly overlap), then released."""
    audit_before = AuditMessage.objects.filter(
        ref=contested.entity, payload__action="transition"
    ).count()
    history_before = contested.history()
    clients = []
    for approver in contested.approvers:
        client = Client()
        client.force_login(approver)
        clients.append(client)
    posts = [{"decision": "approve"}, {"decision": "return", "remarks": "Figures differ."}]
    answers: list = [None, None]

    def press(index: int) -> None:
        try:
            answers[index] = clients[index].post(contested.url, posts[index], follow=True)
        finally:
            connection.close()

    lock = row_locks.hold(type(contested.obj), contested.obj.pk)
    threads = [threading.Thread(target=press, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(row_locks.waiters()) == 2, timeout=30, what="both decisions waiting")
    row_locks.release(lock)
    for thread in threads:
        thread.join(60)

    contested.obj.refresh_from_db()
    won = 0 if contested.obj.status.startswith("APPROVED") else 1
    winner, loser = contested.approvers[won], contested.approvers[1 - won]
    inbox = reverse("approvals:inbox")
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[won].redirect_chain[-1][0] == inbox
    lost = answers[1 - won]
    assert lost.redirect_chain[-1][0] != inbox  # back to the object's page, with why
    page = lost.content.decode()
    assert "already" in page.lower() and winner.get_username() in page, page[:2000]
    events = AuditMessage.objects.filter(ref=contested.entity, payload__action="transition")
    assert events.count() == audit_before + 1  # one decision, one audit event
    assert events.latest("id").actor_id == winner.pk
    written = 1 if won == 0 or contested.returning_writes_history else 0
    assert contested.history() == history_before + written
    return {"winner": ("approve", "return")[won], "loser": loser.get_username()}


def test_two_approvers_deciding_the_same_dcr_dbs_mandate_and_request_decide_once(
    row_locks, wait_until, ledger_agrees
):
    branch, loan = recon.branch_with_loan()
    recon.pay(loan, "1500.00")
    recon.pay(loan, "700.00", mode="UPI")
    assert payments_post_due() == {"posted": 2}
    day = recon.days_ago(1)
    manager = recon.UserFactory(role="Branch Manager", home_branch=branch)
    dcr = dcr_build(branch_id=branch.pk, business_date=day)
    dcr_submit(dcr_id=dcr.pk, actor=manager)
    dbs = Dbs.objects.get(branch=branch, business_date=day)
    dbs_submit(dbs_id=dbs.pk, actor=manager)
    people = actors(branch)
    pending = draft_mandate(make_loan(branch=branch), people["staff"])
    mandate_submit(mandate_id=pending.pk, actor=people["staff"])
    active = active_mandate(make_loan(branch=branch), people)
    suspension = mandate_stop_request(
        mandate_id=active.pk, action="SUSPEND", reason="Customer asked", actor=people["manager"]
    )
    operations = [UserFactory(role="Operations", level=User.Level.HEAD_OFFICE) for _ in range(2)]

    contests = [
        Contested(
            "DCR",
            dcr,
            reverse("reconciliation:dcr_decide", args=[dcr.pk]),
            (
                recon.UserFactory(role="Area Manager", home_area=branch.area),
                recon.UserFactory(role="Area Manager", home_area=branch.area),
            ),
            lambda: dcr.history.count(),
        ),
        Contested(
            "DBS",
            dbs,
            reverse("reconciliation:dbs_decide", args=[dbs.pk]),
            (recon.UserFactory(role="Finance"), recon.UserFactory(role="Finance")),
            lambda: dbs.history.count(),
        ),
        Contested(
            "mandate",
            pending,
            reverse("mandates:decide", args=[pending.pk]),
            (people["manager"], people["ops"]),
            lambda: pending.transitions.count(),
        ),
        Contested(
            "mandate suspension",
            suspension,
            reverse("approvals:decide", args=[suspension.pk]),
            tuple(operations),
            lambda: active.transitions.count(),
            returning_writes_history=False,
        ),
    ]
    outcomes = {c.label: _decide_at_once(c, row_locks, wait_until) for c in contests}

    active.refresh_from_db()
    suspended = outcomes["mandate suspension"]["winner"] == "approve"
    assert active.status == ("SUSPENDED" if suspended else "ACTIVE")
    figures(
        "two approvers at once",
        **{label: f"{o['winner']} won, {o['loser']} told" for label, o in outcomes.items()},
        integrity=ledger_agrees(),
    )
