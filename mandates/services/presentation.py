"""The daily presentation to banking partners, once per date (the run-once guard of
``core.jobs``), in batches per partner.

Each execution is written to DynamoDB once, already in its presented form (PRESENTED,
with its batch and ``presented_at``), right before the Postgres transaction that hands its
chunk to the partner and marks the chunk's presentations PRESENTED (``attempts`` + 1).
**The presentation rows are the truth of what was presented**: execution ``{id}-{n}`` was
handed over when its presentation's ``attempts`` has reached ``n``. An execution item a
killed run wrote before its chunk's transaction committed reads PRESENTED without having
been presented; the resumed run finds its presentation still due and presents it with the
same deterministic id (``{presentation id}-{attempt}``; the put is conditional on absence,
so the item written before is kept, never written twice), and until then every reader
that matters asks Postgres: a result for it is refused as for an unknown execution
(``execution_result_apply``, the response file's check), and the mandate's page shows it
NOT PRESENTED (``selectors.mandate_executions``). The earlier design wrote each execution
twice (SCHEDULED, then PRESENTED after the commit), which cost half the write rate; an
item written SCHEDULED by it is read the same way.

A taken-over run needs no checkpoint of its own: what is presented is marked on each
presentation (and each pre-debit notice on its row), so it resumes with what is left."""

from __future__ import annotations

import contextlib
import logging
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from pynamodb.exceptions import TransactWriteError

from core.clock import iso
from core.errors import ApplicationError
from core.jobs import job_finish, job_heartbeat, job_held_for, job_run
from core.models import JobRun
from core.money import to_paise
from dynamo.errors import cancellation_codes
from dynamo.shards import in_parallel_begun
from dynamo.transactions import transact_put
from loans.models import BankingPartner

from ..ddb_models import DUE_DATE_SHARDS, MandateExecutionItem
from ..models import Mandate, PresentationBatch, ScheduledPresentation
from ..partners import DebitRequest, adapter_for

logger = logging.getLogger(__name__)
S = Mandate.Status
P = ScheduledPresentation.Status


PRESENTATION_JOB = "mandates_presentation"
RUN_LEASE = timedelta(seconds=settings.MANDATES_PRESENTATION_LEASE_SECONDS)
# Presentations handed to the partner (and recorded) in one Postgres transaction, and the
# executions written in one DynamoDB transaction (its limit is 100 items): a chunk is one
# transaction for each of the 8 threads of the shared pool (``dynamo.shards``), all at once.
CHUNK = 800
TRANSACTION_ITEMS = 100
CONDITION_FAILED = "ConditionalCheckFailed"
# A due presentation as the run reads it: values, not model objects (building 100,000
# objects with their mandate and loan was an eighth of the run's time).
DUE_FIELDS = (
    "pk",
    "attempts",
    "due_date",
    "amount",
    "mandate_id",
    "mandate__banking_partner_id",
    "mandate__umrn",
    "mandate__account_number",
    "mandate__ifsc",
    "mandate__loan__loan_number",
    "mandate__loan__branch_id",
)


def presentation_run_held_for(*, run_date: date) -> float | None:
    """Seconds until the lease of the date's unfinished run expires, when another run holds
    it; None when the date's run finished, or nobody holds it. A task that found the run
    held tries again then: a run killed half-way is resumed that day, not the next."""
    return job_held_for(name=PRESENTATION_JOB, key=run_date)


def mandates_present_due(*, run_date: date) -> JobRun | None:
    """Pre-debit notices for upcoming presentations, then today's presentations, batched
    per banking partner. Returns the date's run (its ``counts``: ``presented``,
    ``notices``), or None when another run has (or had) this date."""
    with job_run(PRESENTATION_JOB, run_date, lease=RUN_LEASE) as run:
        if run is None:
            return None
        _pre_debit_notices(run_date, run)
        due = (
            ScheduledPresentation.objects.filter(
                status__in=[P.SCHEDULED, P.RETRY_SCHEDULED],
                presentation_date__lte=run_date,
                mandate__status=S.ACTIVE,
            )
            .order_by("mandate__banking_partner_id", "id")
            .values_list(*DUE_FIELDS, named=True)
        )
        by_partner: dict[int, list] = {}
        for row in due:
            by_partner.setdefault(row.mandate__banking_partner_id, []).append(row)
        partners = BankingPartner.objects.in_bulk(list(by_partner))
        for partner_id, rows in by_partner.items():
            _present_batch(run_date, partners[partner_id], rows, run)
        # the date's batches, so that a resumed run also counts what the killed one presented
        batches = PresentationBatch.objects.filter(run_date=run_date)
        presented = batches.aggregate(n=Sum("count"))["n"] or 0
        job_finish(run, counts={"presented": presented, "notices": run.counts.get("notices", 0)})
    return run


def execution_id_for(row, attempt: int) -> str:
    """The execution id of a presentation's attempt (``row``: a presentation, or a due row
    of the run)."""
    return f"{row.pk}-{attempt}"


def _present_batch(run_date: date, partner: BankingPartner, rows: list, run: JobRun) -> int:
    """One partner's due presentations, ``CHUNK`` at a time: each chunk's executions written,
    then handed to the partner and recorded in one Postgres transaction; the run's lease
    renewed after each chunk. The next chunk's executions are written while this one's
    transaction runs (DynamoDB's threads never wait for Postgres); a run killed there
    leaves two chunks' executions not presented, which its resumed run presents."""
    batch, _ = PresentationBatch.objects.get_or_create(
        partner=partner,
        run_date=run_date,
        defaults={"reference": f"{partner.code.upper()}-{run_date:%Y%m%d}"},
    )
    chunks = [rows[start : start + CHUNK] for start in range(0, len(rows), CHUNK)]
    now = iso(timezone.now())
    requests = _requests(chunks[0], partner, batch, now)
    written = in_parallel_begun(_write_executions, _groups(requests[0]))
    for number, chunk in enumerate(chunks):
        written()  # an error stops the run before this chunk is presented
        debits, written = requests[1], _nothing
        if number + 1 < len(chunks):
            requests = _requests(chunks[number + 1], partner, batch, now)
            written = in_parallel_begun(_write_executions, _groups(requests[0]))
        try:
            _hand_over(partner, batch, chunk, debits)
            job_heartbeat(run)
        except BaseException:
            with contextlib.suppress(Exception):
                written()  # none of the run's writes is left running behind it
            raise
    return len(rows)


def _nothing() -> list:
    return []


def _requests(
    rows: list, partner: BankingPartner, batch: PresentationBatch, now: str
) -> tuple[list[dict], list[DebitRequest]]:
    """A chunk's execution puts (conditional on absence) and the partner's debits."""
    table = MandateExecutionItem.Meta.table_name
    puts, debits = [], []
    for row in rows:
        attempt = row.attempts + 1
        execution_id = execution_id_for(row, attempt)
        due_date, amount_paise = row.due_date.isoformat(), to_paise(row.amount)
        puts.append(
            {
                "TableName": table,
                "Item": _execution_item(
                    execution_id, row, partner, batch, attempt, due_date, amount_paise, now
                ),
                "ConditionExpression": "attribute_not_exists(execution_id)",
            }
        )
        debits.append(
            DebitRequest(
                execution_id=execution_id,
                umrn=row.mandate__umrn or "",
                account_number=row.mandate__account_number,
                ifsc=row.mandate__ifsc,
                amount_paise=amount_paise,
                due_date=due_date,
            )
        )
    return puts, debits


@transaction.atomic
def _hand_over(
    partner: BankingPartner, batch: PresentationBatch, rows: list, debits: list[DebitRequest]
) -> None:
    """The chunk handed to the partner and its presentations marked PRESENTED, in one
    transaction: the moment the chunk's executions (written before) are presented."""
    adapter_for(partner.code).present(batch_reference=batch.reference, debits=debits)
    ScheduledPresentation.objects.filter(
        pk__in=[row.pk for row in rows], status__in=[P.SCHEDULED, P.RETRY_SCHEDULED]
    ).update(status=P.PRESENTED, attempts=F("attempts") + 1)
    total = sum((row.amount for row in rows), Decimal("0.00"))
    PresentationBatch.objects.filter(pk=batch.pk).update(
        count=F("count") + len(rows), total=F("total") + total, acknowledged_at=timezone.now()
    )


def _execution_item(
    execution_id: str,
    row,
    partner: BankingPartner,
    batch: PresentationBatch,
    attempt: int,
    due_date: str,
    amount_paise: int,
    now: str,
) -> dict:
    """``MandateExecutionItem`` as presented, in DynamoDB's wire form, built by hand: the
    model's object and ``serialize()`` cost 36 µs of CPU an item, this 2 µs. The test
    ``test_an_execution_is_written_once_as_presented`` reads it back through the model."""
    return {
        "execution_id": {"S": execution_id},
        "mandate_id": {"S": str(row.mandate_id)},
        "due_attempt": {"S": f"{due_date}#{attempt:02d}"},
        "due_date_shard": {"S": f"{due_date}#{row.pk % DUE_DATE_SHARDS}"},
        "presentation_id": {"N": str(row.pk)},
        "loan_number": {"S": row.mandate__loan__loan_number},
        "branch_id": {"N": str(row.mandate__loan__branch_id)},
        "partner_code": {"S": partner.code},
        "batch_reference": {"S": batch.reference},
        "umrn": {"S": row.mandate__umrn or ""},
        "due_date": {"S": due_date},
        "attempt": {"N": str(attempt)},
        "amount_paise": {"N": str(amount_paise)},
        "status": {"S": "PRESENTED"},
        "created_at": {"S": now},
        "presented_at": {"S": now},
    }


def _groups(things: list) -> list[list]:
    return [things[i : i + TRANSACTION_ITEMS] for i in range(0, len(things), TRANSACTION_ITEMS)]


def _write_executions(puts: list[dict]) -> None:
    """Each execution unless it exists, in one transaction for the group. When some exist
    already (a resumed run), the cancellation says which: the group is sent again without
    them."""
    while puts:
        try:
            transact_put(puts)
            return
        except TransactWriteError as exc:
            codes = cancellation_codes(exc)
            if CONDITION_FAILED not in codes:
                raise
            puts = [put for put, code in zip(puts, codes, strict=True) if code != CONDITION_FAILED]


def _pre_debit_notices(run_date: date, run: JobRun) -> None:
    """Each notice is marked on its presentation and counted on the run in one transaction,
    so a run killed half-way and resumed counts every notice of the date once."""
    from notifications.services import notification_queue

    horizon = run_date + timedelta(days=settings.MANDATES_PRE_DEBIT_NOTICE_DAYS)
    rows = ScheduledPresentation.objects.filter(
        status__in=[P.SCHEDULED, P.RETRY_SCHEDULED],
        presentation_date__gt=run_date,
        presentation_date__lte=horizon,
        pre_debit_notified_at__isnull=True,
        mandate__status=S.ACTIVE,
    ).select_related("mandate__payer", "mandate__loan")
    for row in rows:
        with transaction.atomic():
            marked = ScheduledPresentation.objects.filter(
                pk=row.pk, pre_debit_notified_at__isnull=True
            ).update(pre_debit_notified_at=timezone.now())
            if not marked:
                continue
            job_heartbeat(run, counts={"notices": run.counts.get("notices", 0) + 1})
            try:
                notification_queue(
                    template_code="pre_debit_notice",
                    channel="SMS",
                    recipient=row.mandate.payer.mobile,
                    context={
                        "customer_name": row.mandate.payer.name,
                        "amount": row.amount,
                        "loan_number": row.mandate.loan.loan_number,
                        "due_date": row.presentation_date,
                        "debit_date": row.presentation_date,
                        "umrn": row.mandate.umrn or "",
                        "account_masked": row.mandate.account_number_masked,
                        "bank_name": row.mandate.bank_name,
                    },
                    entity=f"mandates.scheduledpresentation#{row.pk}",
                )
            except ApplicationError:
                logger.exception("pre-debit notice for presentation %s not queued", row.pk)
