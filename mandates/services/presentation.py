"""The daily presentation to banking partners, guarded per date, in batches per partner.

Presentations use deterministic execution ids (``{presentation id}-{attempt}``) and
conditional puts, so a run repeated after a crash presents nothing twice."""

from __future__ import annotations

import contextlib
import logging
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from pynamodb.exceptions import PynamoDBException

from core.clock import iso
from core.errors import ApplicationError
from core.money import to_paise

from ..ddb_models import DUE_DATE_SHARDS, MandateExecutionItem
from ..models import Mandate, PresentationBatch, PresentationRun, ScheduledPresentation
from ..partners import DebitRequest, adapter_for

logger = logging.getLogger(__name__)
S = Mandate.Status
P = ScheduledPresentation.Status


RUN_LEASE = timedelta(seconds=settings.MANDATES_PRESENTATION_LEASE_SECONDS)


def _claim_run(run_date: date) -> PresentationRun | None:
    """One run per date, also with two beats: a run row, claimed with a lease so that a
    run killed half-way can be resumed by the next one."""
    run, _ = PresentationRun.objects.get_or_create(run_date=run_date)
    now = timezone.now()
    claimed = (
        PresentationRun.objects.filter(pk=run.pk, finished_at__isnull=True)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=now + RUN_LEASE)
    )
    return PresentationRun.objects.get(pk=run.pk) if claimed else None


def presentation_run_held_for(*, run_date: date) -> float | None:
    """Seconds until the lease of the date's unfinished run expires, when another run holds
    it; None when the date's run finished, or nobody holds it. A task that found the run
    held tries again then: a run killed half-way is resumed that day, not the next."""
    run = PresentationRun.objects.filter(run_date=run_date, finished_at__isnull=True).first()
    if run is None or run.claimed_until is None:
        return None
    left = (run.claimed_until - timezone.now()).total_seconds()
    return left if left > 0 else None


def mandates_present_due(*, run_date: date) -> PresentationRun | None:
    """Pre-debit notices for upcoming presentations, then today's presentations, batched
    per banking partner. Returns None when another run has (or had) this date."""
    run = _claim_run(run_date)
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
        _present_batch(run_date, rows)
    # the date's batches, so that a resumed run also counts what the killed one presented
    presented = PresentationBatch.objects.filter(run_date=run_date).aggregate(n=Sum("count"))["n"]
    PresentationRun.objects.filter(pk=run.pk).update(
        finished_at=timezone.now(), presented=presented or 0
    )
    run.refresh_from_db()
    return run


def execution_id_for(row: ScheduledPresentation, attempt: int) -> str:
    return f"{row.pk}-{attempt}"


def _present_batch(run_date: date, rows: list[ScheduledPresentation]) -> int:
    partner = rows[0].mandate.banking_partner
    batch, _ = PresentationBatch.objects.get_or_create(
        partner=partner,
        run_date=run_date,
        defaults={"reference": f"{partner.code.upper()}-{run_date:%Y%m%d}"},
    )
    now = timezone.now()
    debits = []
    for row in rows:
        attempt = row.attempts + 1
        execution_id = execution_id_for(row, attempt)
        item = MandateExecutionItem(
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
        try:
            item.save(condition=MandateExecutionItem.execution_id.does_not_exist())
        except PynamoDBException as exc:
            if getattr(exc, "cause_response_code", None) != "ConditionalCheckFailedException":
                raise  # the run stops; the next claim resumes it
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
    with transaction.atomic():
        adapter_for(partner.code).present(batch_reference=batch.reference, debits=debits)
        for row in rows:
            ScheduledPresentation.objects.filter(
                pk=row.pk, status__in=[P.SCHEDULED, P.RETRY_SCHEDULED]
            ).update(status=P.PRESENTED, attempts=row.attempts + 1)
        total = sum((row.amount for row in rows), Decimal("0.00"))
        PresentationBatch.objects.filter(pk=batch.pk).update(
            count=batch.count + len(rows), total=batch.total + total, acknowledged_at=now
        )
    for debit in debits:
        # A result may have got there first, or DynamoDB is down: the result sync repairs it.
        with contextlib.suppress(PynamoDBException):
            MandateExecutionItem(debit.execution_id).update(
                actions=[
                    MandateExecutionItem.status.set("PRESENTED"),
                    MandateExecutionItem.presented_at.set(iso(now)),
                ],
                condition=MandateExecutionItem.status == "SCHEDULED",
            )
    return len(rows)


def _pre_debit_notices(run_date: date, run: PresentationRun) -> None:
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
            PresentationRun.objects.filter(pk=run.pk).update(notices=F("notices") + 1)
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
