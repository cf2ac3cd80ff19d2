"""The daily presentation to banking partners, once per date (the run-once guard of
``core.jobs``), in batches per partner.

Presentations use deterministic execution ids (``{presentation id}-{attempt}``) and
conditional puts, so a run repeated after a crash presents nothing twice. A taken-over run
needs no checkpoint of its own: what is presented is marked on each presentation (and
each pre-debit notice on its row), so it resumes with what is left."""

from __future__ import annotations

import contextlib
import logging
from datetime import date, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone
from pynamodb.exceptions import PutError, PynamoDBException, TransactWriteError

from core.clock import iso
from core.errors import ApplicationError
from core.jobs import job_finish, job_heartbeat, job_held_for, job_run
from core.models import JobRun
from core.money import to_paise
from dynamo.errors import cancellation_codes
from dynamo.shards import in_parallel, in_parallel_settled
from dynamo.transactions import transact_write

from ..ddb_models import DUE_DATE_SHARDS, MandateExecutionItem
from ..models import Mandate, PresentationBatch, ScheduledPresentation
from ..partners import DebitRequest, adapter_for

logger = logging.getLogger(__name__)
S = Mandate.Status
P = ScheduledPresentation.Status


PRESENTATION_JOB = "mandates_presentation"
RUN_LEASE = timedelta(seconds=settings.MANDATES_PRESENTATION_LEASE_SECONDS)
# Presentations handed to the partner (and recorded) in one Postgres transaction, and the
# executions written in one DynamoDB transaction (its limit is 100 items).
CHUNK = 1000
TRANSACTION_ITEMS = 100
CONDITION_FAILED = "ConditionalCheckFailed"


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
            .select_related("mandate__banking_partner", "mandate__loan")
            .order_by("mandate__banking_partner_id", "id")
        )
        by_partner: dict[int, list[ScheduledPresentation]] = {}
        for row in due:
            by_partner.setdefault(row.mandate.banking_partner_id, []).append(row)
        for rows in by_partner.values():
            _present_batch(run_date, rows, run)
        # the date's batches, so that a resumed run also counts what the killed one presented
        batches = PresentationBatch.objects.filter(run_date=run_date)
        presented = batches.aggregate(n=Sum("count"))["n"] or 0
        job_finish(run, counts={"presented": presented, "notices": run.counts.get("notices", 0)})
    return run


def execution_id_for(row: ScheduledPresentation, attempt: int) -> str:
    return f"{row.pk}-{attempt}"


def _present_batch(run_date: date, rows: list[ScheduledPresentation], run: JobRun) -> int:
    """One partner's due presentations, ``CHUNK`` at a time: each chunk's executions written,
    handed to the partner and recorded in one Postgres transaction, then marked PRESENTED;
    the run's lease renewed after each chunk."""
    partner = rows[0].mandate.banking_partner
    batch, _ = PresentationBatch.objects.get_or_create(
        partner=partner,
        run_date=run_date,
        defaults={"reference": f"{partner.code.upper()}-{run_date:%Y%m%d}"},
    )
    for start in range(0, len(rows), CHUNK):
        _present_chunk(partner, batch, rows[start : start + CHUNK])
        job_heartbeat(run)
    return len(rows)


def _present_chunk(partner, batch: PresentationBatch, rows: list[ScheduledPresentation]) -> None:
    now = timezone.now()
    items, debits = [], []
    for row in rows:
        attempt = row.attempts + 1
        execution_id = execution_id_for(row, attempt)
        items.append(
            MandateExecutionItem(
                execution_id,
                mandate_id=str(row.mandate_id),
                due_attempt=f"{row.due_date.isoformat()}#{attempt:02d}",
                due_date_shard=f"{row.due_date.isoformat()}#{row.pk % DUE_DATE_SHARDS}",
                presentation_id=row.pk,
                loan_number=row.mandate.loan.loan_number,
                branch_id=row.mandate.loan.branch_id,
                partner_code=partner.code,
                batch_reference=batch.reference,
                umrn=row.mandate.umrn or "",
                due_date=row.due_date.isoformat(),
                attempt=attempt,
                amount_paise=to_paise(row.amount),
                status="SCHEDULED",
                created_at=iso(now),
            )
        )
        debits.append(
            DebitRequest(
                execution_id=execution_id,
                umrn=row.mandate.umrn or "",
                account_number=row.mandate.account_number,
                ifsc=row.mandate.ifsc,
                amount_paise=to_paise(row.amount),
                due_date=row.due_date.isoformat(),
            )
        )
    # An error stops the run (the next claim resumes it); an execution written by a killed
    # run is found by its deterministic id and left as it is.
    in_parallel(_write_executions, _groups(items))
    with transaction.atomic():
        adapter_for(partner.code).present(batch_reference=batch.reference, debits=debits)
        ScheduledPresentation.objects.filter(
            pk__in=[row.pk for row in rows], status__in=[P.SCHEDULED, P.RETRY_SCHEDULED]
        ).update(status=P.PRESENTED, attempts=F("attempts") + 1)
        total = sum((row.amount for row in rows), Decimal("0.00"))
        PresentationBatch.objects.filter(pk=batch.pk).update(
            count=F("count") + len(rows), total=F("total") + total, acknowledged_at=now
        )
    # A result may have got there first, or DynamoDB is down: the result sync repairs it.
    in_parallel_settled(
        partial(_mark_presented, presented_at=iso(now)),
        _groups([debit.execution_id for debit in debits]),
    )


def _groups(things: list) -> list[list]:
    return [things[i : i + TRANSACTION_ITEMS] for i in range(0, len(things), TRANSACTION_ITEMS)]


def _write_executions(items: list[MandateExecutionItem]) -> None:
    """Each item unless it exists: one transaction for the group, item by item when one of
    them exists already (a resumed run)."""
    absent = MandateExecutionItem.execution_id.does_not_exist()
    try:
        transact_write(lambda tw: [tw.save(item, condition=absent) for item in items])
        return
    except TransactWriteError as exc:
        if CONDITION_FAILED not in cancellation_codes(exc):
            raise
    for item in items:
        try:
            item.save(condition=absent)
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise


def _mark_presented(execution_ids: list[str], *, presented_at: str) -> None:
    """SCHEDULED > PRESENTED, in one transaction for the group, item by item when one of
    them has moved on already (its result came first)."""
    actions = [
        MandateExecutionItem.status.set("PRESENTED"),
        MandateExecutionItem.presented_at.set(presented_at),
    ]
    scheduled = MandateExecutionItem.status == "SCHEDULED"
    try:
        transact_write(
            lambda tw: [
                tw.update(MandateExecutionItem(eid), actions=actions, condition=scheduled)
                for eid in execution_ids
            ]
        )
        return
    except TransactWriteError as exc:
        if CONDITION_FAILED not in cancellation_codes(exc):
            raise
    for eid in execution_ids:
        with contextlib.suppress(PynamoDBException):
            MandateExecutionItem(eid).update(actions=actions, condition=scheduled)


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
