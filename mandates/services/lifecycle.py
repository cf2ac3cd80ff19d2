"""Mandates: the lifecycle with maker-checker, the execution schedule, the daily
presentation to banking partners, and the results (payments, bounces, charges).

Every step can be repeated after a crash: presentations use deterministic execution ids
(``{presentation id}-{attempt}``) and conditional puts; a result is applied once, guarded
by a row unique per execution id, and its DynamoDB side is re-synced idempotently.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from pynamodb.exceptions import DoesNotExist, PynamoDBException

from accounts.models import User
from approvals.models import SubjectContribution
from approvals.services import (
    KindHandler,
    approval_request_create,
    register_kind,
    subject_contribution_record,
    subject_decide,
    subject_of,
)
from core.clock import iso
from core.errors import ApplicationError, Conflict, NotFound
from core.money import PAISA, from_paise, to_paise
from core.workflow import InvalidTransition, allowed, require_permission, transition
from loans.models import Instalment, LoanAccount, LoanCharge
from loans.refdata import loan_product
from loans.services import loan_charge_raise
from payments.exceptions import DuplicateReceipt
from payments.services import PaymentInput, payment_ingest

from ..ddb_models import DUE_DATE_SHARDS, MandateExecutionItem
from ..models import (
    BankHoliday,
    ExecutionResult,
    Mandate,
    PresentationBatch,
    PresentationRun,
    ReturnCodePolicy,
    ScheduledPresentation,
)
from ..partners import DebitRequest, adapter_for
from ..refdata import return_code as return_code_policy

logger = logging.getLogger(__name__)
S = Mandate.Status
P = ScheduledPresentation.Status
C = SubjectContribution.Kind


class MandateError(ApplicationError):
    code = "mandate_error"


# --- Lifecycle ------------------------------------------------------------------------


def _locked(mandate_id: int) -> Mandate:
    try:
        return Mandate.objects.select_for_update().select_related("loan").get(pk=mandate_id)
    except Mandate.DoesNotExist:
        raise NotFound("No such mandate.", code="mandate_not_found") from None


@transaction.atomic
def mandate_create(*, actor: User, **fields) -> Mandate:
    mandate = Mandate(created_by=actor, **fields)
    mandate.full_clean()
    mandate.save()
    mandate.transitions.create(from_status="", to_status=S.DRAFT, actor=actor, remarks="created")
    subject_contribution_record(subject=subject_of(mandate), actor=actor, kind=C.CREATED)
    return mandate


@transaction.atomic
def mandate_update(*, mandate_id: int, actor: User, **changes) -> Mandate:
    """Change a draft's details (``Mandate.DETAIL_FIELDS``). The editor becomes a
    contributor of the mandate's open round, so they cannot approve what they changed.
    Only the fields that differ are saved; the save is audited by the change tracking."""
    require_permission(actor, "mandates.change_mandate", "You may not change mandates.")
    unknown = set(changes) - set(Mandate.DETAIL_FIELDS)
    if unknown:
        raise MandateError(f"Not a mandate detail: {', '.join(sorted(unknown))}.")
    mandate = _locked(mandate_id)
    if mandate.status != S.DRAFT:
        raise InvalidTransition(
            f"Only a draft mandate can be changed; this one is "
            f"{mandate.get_status_display().lower()}.",
            code="not_draft",
        )
    changed = [name for name, value in changes.items() if getattr(mandate, name) != value]
    if not changed:
        return mandate
    for name in changed:
        setattr(mandate, name, changes[name])
    mandate.full_clean()
    mandate.save(update_fields=changed)
    subject_contribution_record(subject=subject_of(mandate), actor=actor, kind=C.CHANGED)
    return mandate


@transaction.atomic
def mandate_submit(*, mandate_id: int, actor: User, remarks: str = "") -> Mandate:
    require_permission(actor, "mandates.submit_mandate", "You may not submit mandates.")
    mandate = _locked(mandate_id)
    transition(mandate, S.PENDING_APPROVAL, actor=actor, remarks=remarks)
    subject_contribution_record(subject=subject_of(mandate), actor=actor, kind=C.SUBMITTED)
    return mandate


def _decision_lock(mandate_id: int, actor: User) -> Mandate:
    mandate = _locked(mandate_id)
    if mandate.status != S.PENDING_APPROVAL:
        who = mandate.checker.get_username() if mandate.checker else "someone else"
        raise Conflict(
            f"This mandate is {mandate.get_status_display().lower()} already (by {who}).",
            code="already_decided",
        )
    require_permission(actor, "mandates.approve_mandate", "You may not approve mandates.")
    subject_decide(
        subject=subject_of(mandate),
        actor=actor,
        makers=[mandate.maker_id, mandate.created_by_id],
        what="this mandate",
    )
    return mandate


@transaction.atomic
def mandate_approve(*, mandate_id: int, actor: User, remarks: str = "") -> Mandate:
    mandate = _decision_lock(mandate_id, actor)
    transition(mandate, S.APPROVED, actor=actor, remarks=remarks)
    return mandate


@transaction.atomic
def mandate_return(*, mandate_id: int, actor: User, remarks: str) -> Mandate:
    if not remarks.strip():
        raise MandateError("Say why you return it.", code="remarks_required")
    mandate = _decision_lock(mandate_id, actor)
    transition(mandate, S.DRAFT, actor=actor, remarks=remarks)
    return mandate


def mandate_send_to_bank(*, mandate_id: int, actor: User) -> Mandate:
    """APPROVED > SUBMITTED_TO_BANK, then the partner's answer: ACTIVE with a UMRN, or
    REJECTED. (The sandbox answers at once; a real partner's answer comes the same way.)"""
    require_permission(
        actor, "mandates.send_mandate_to_bank", "You may not send mandates to the bank."
    )
    with transaction.atomic():
        mandate = _locked(mandate_id)
        transition(mandate, S.SUBMITTED_TO_BANK, actor=actor)
    outcome = adapter_for(mandate.banking_partner.code).register_mandate(mandate)
    if outcome.accepted:
        return mandate_activate(mandate_id=mandate.pk, umrn=outcome.umrn, actor=actor)
    return mandate_registration_reject(mandate_id=mandate.pk, reason=outcome.reason, actor=actor)


@transaction.atomic
def mandate_activate(*, mandate_id: int, umrn: str, actor: User | None) -> Mandate:
    mandate = _locked(mandate_id)
    mandate.umrn = umrn
    try:
        with transaction.atomic():
            transition(mandate, S.ACTIVE, actor=actor, remarks=f"UMRN {umrn}")
    except IntegrityError:
        raise MandateError(
            f"Loan {mandate.loan.loan_number} already has an active mandate.",
            code="active_mandate_exists",
        ) from None
    mandate_schedule_generate(mandate=mandate)
    return mandate


@transaction.atomic
def mandate_registration_reject(*, mandate_id: int, reason: str, actor: User | None) -> Mandate:
    mandate = _locked(mandate_id)
    transition(mandate, S.REJECTED, actor=actor, remarks=reason)
    return mandate


STOP_KINDS = {"SUSPEND": "MANDATE_SUSPENSION", "CANCEL": "MANDATE_CANCELLATION"}


def mandate_stop_request(*, mandate_id: int, action: str, reason: str, actor: User):
    """A branch manager asks to suspend or cancel; operations approves (maker-checker)."""
    from accounts.scoping import scope_queryset

    mandate = (
        scope_queryset(Mandate.objects.select_related("loan"), actor).filter(pk=mandate_id).first()
    )
    if mandate is None:
        raise NotFound("No such mandate.", code="mandate_not_found")
    target = S.SUSPENDED if action == "SUSPEND" else S.CANCELLED
    if not allowed(mandate, target):
        raise InvalidTransition(
            f"A {mandate.get_status_display().lower()} mandate cannot be {target.label.lower()}."
        )
    return approval_request_create(
        kind=STOP_KINDS[action],
        branch_id=mandate.loan.branch_id,
        entity=f"mandates.mandate#{mandate.pk}",
        entity_repr=f"mandate {mandate.pk} on {mandate.loan.loan_number}",
        reason=reason,
        payload={"mandate_id": mandate.pk, "action": action},
        actor=actor,
    )


def _mandate_stop(mandate: Mandate, to: str, *, actor: User | None, remarks: str) -> None:
    transition(mandate, to, actor=actor, remarks=remarks)
    ScheduledPresentation.objects.filter(
        mandate=mandate, status__in=[P.SCHEDULED, P.RETRY_SCHEDULED]
    ).update(status=P.STOPPED)


def _apply_stop(*, request, actor) -> None:
    mandate = _locked(request.payload["mandate_id"])
    to = S.SUSPENDED if request.payload["action"] == "SUSPEND" else S.CANCELLED
    _mandate_stop(mandate, to, actor=actor, remarks=request.reason)


@transaction.atomic
def mandate_resume(*, mandate_id: int, actor: User, remarks: str = "") -> Mandate:
    require_permission(actor, "mandates.approve_mandate_stop", "You may not resume mandates.")
    mandate = _locked(mandate_id)
    try:
        with transaction.atomic():
            transition(mandate, S.ACTIVE, actor=actor, remarks=remarks)
    except IntegrityError:
        raise MandateError(
            "The loan has another active mandate.", code="active_mandate_exists"
        ) from None
    mandate_schedule_generate(mandate=mandate)
    return mandate


def mandates_expire(*, today: date) -> int:
    expired = 0
    for mandate_id in Mandate.objects.filter(status=S.ACTIVE, end_date__lt=today).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            mandate = _locked(mandate_id)
            if mandate.status == S.ACTIVE:
                _mandate_stop(mandate, S.EXPIRED, actor=None, remarks="end date passed")
                expired += 1
    return expired


for _kind in STOP_KINDS.values():
    register_kind(
        _kind,
        KindHandler(
            maker_permission="mandates.request_mandate_stop",
            checker_permission="mandates.approve_mandate_stop",
            apply=_apply_stop,
        ),
    )


# --- Execution schedule ---------------------------------------------------------------


def next_working_day(day: date, holidays: set[date] | None = None) -> date:
    """The day itself, or the next day that is neither a Sunday nor a bank holiday."""
    if holidays is None:
        holidays = set(BankHoliday.objects.filter(date__gte=day).values_list("date", flat=True))
    while day.weekday() == 6 or day in holidays:
        day += timedelta(days=1)
    return day


def mandate_schedule_generate(*, mandate: Mandate, today: date | None = None) -> int:
    """Schedule the unpaid instalments due within the mandate's dates, from today on."""
    today = today or timezone.localdate()
    holidays = set(BankHoliday.objects.filter(date__gte=today).values_list("date", flat=True))
    instalments = Instalment.objects.filter(
        loan=mandate.loan_id,
        due_date__gte=max(today, mandate.start_date),
        due_date__lte=mandate.end_date,
    ).exclude(status=Instalment.Status.PAID)
    rows = [
        ScheduledPresentation(
            mandate=mandate,
            instalment=inst,
            due_date=inst.due_date,
            presentation_date=next_working_day(inst.due_date, holidays),
            amount=min(inst.total_due - inst.total_paid, mandate.max_amount),
        )
        for inst in instalments
    ]
    created = ScheduledPresentation.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


def presentations_reschedule(*, today: date | None = None) -> int:
    """Move scheduled presentations off bank holidays (after the calendar changed)."""
    today = today or timezone.localdate()
    holidays = set(BankHoliday.objects.filter(date__gte=today).values_list("date", flat=True))
    moved = 0
    for row in ScheduledPresentation.objects.filter(
        status__in=[P.SCHEDULED, P.RETRY_SCHEDULED], presentation_date__gte=today
    ):
        day = next_working_day(
            row.due_date if row.attempts == 0 else row.presentation_date, holidays
        )
        if day != row.presentation_date:
            ScheduledPresentation.objects.filter(pk=row.pk).update(
                presentation_date=day, pre_debit_notified_at=None
            )
            moved += 1
    return moved


# --- Daily presentation ---------------------------------------------------------------

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


# --- Results --------------------------------------------------------------------------


class ResultRejected(ApplicationError):
    code = "invalid_result"


class _NachSystem:
    """Who a NACH collection is recorded by: the system, for every branch."""

    is_authenticated = True
    is_active = True
    is_superuser = True
    is_api_client = False
    pk = None

    def has_perm(self, perm) -> bool:
        return True


def execution_result_apply(
    *,
    partner_code: str,
    execution_id: str,
    status: str,
    return_code: str = "",
    reason: str = "",
) -> str:
    """Apply a partner's result for one execution: ``applied`` the first time,
    ``duplicate`` when the same result comes again (nothing changes)."""
    if status not in {"SUCCESS", "BOUNCED"}:
        raise ResultRejected("status must be SUCCESS or BOUNCED.", field="status")
    if status == "BOUNCED" and not return_code:
        raise ResultRejected("A bounce needs its return code.", field="return_code")
    try:
        item = MandateExecutionItem.get(execution_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"No execution {execution_id}.", code="execution_not_found") from None
    if item.partner_code != partner_code:
        raise NotFound(f"No execution {execution_id} for this partner.", code="execution_not_found")
    policy = None
    if status == "BOUNCED":
        policy = return_code_policy(return_code)  # cached, invalidated when the table changes
        if policy is None:
            raise ResultRejected(f"Unknown NACH return code {return_code!r}.", field="return_code")
    outcome = _apply_in_ledger(item, status, return_code, reason, policy)
    execution_result_sync(execution_id=execution_id)
    return outcome


@transaction.atomic
def _apply_in_ledger(item, status: str, return_code: str, reason: str, policy) -> str:
    # Lock the presentation first: the same result delivered twice at once waits here and
    # then finds the first one's row. (The product comes from the reference data cache: joined
    # here, FOR UPDATE would lock the product's row for every bounce of every loan on it.)
    row = (
        ScheduledPresentation.objects.select_for_update()
        .select_related("mandate__loan", "mandate__payer")
        .get(pk=item.presentation_id)
    )
    existing = ExecutionResult.objects.filter(execution_id=item.execution_id).first()
    if existing is not None:
        if (existing.status, existing.return_code) != (status, return_code or ""):
            raise Conflict(
                f"Execution {item.execution_id} already has the result {existing.status} "
                f"{existing.return_code}".strip()
                + ".",
                code="result_conflict",
            )
        return "duplicate"
    ExecutionResult.objects.create(
        execution_id=item.execution_id,
        presentation=row,
        status=status,
        return_code=return_code or "",
        reason=reason[:200],
    )
    row.last_return_code = return_code or ""
    if status == "SUCCESS":
        row.status = P.SUCCEEDED
        row.save(update_fields=["status", "last_return_code"])
        return "applied"
    mandate = Mandate.objects.select_for_update().get(pk=row.mandate_id)
    loan = LoanAccount.objects.select_for_update().get(pk=mandate.loan_id)
    product = loan_product(loan.product_id)
    loan_charge_raise(
        loan=loan,
        instalment=row.instalment,
        kind=LoanCharge.Kind.BOUNCE,
        amount=product.bounce_charge,
        gst_rate=product.gst_rate_on_charges,
        reference=f"nach-bounce-{item.execution_id}",
        reason=f"NACH return {return_code} {policy.description}",
    )
    if policy.retryable and row.attempts < policy.max_presentations:
        row.status = P.RETRY_SCHEDULED
        row.presentation_date = next_working_day(
            timezone.localdate() + timedelta(days=policy.retry_after_days)
        )
        row.pre_debit_notified_at = None
    else:
        row.status = P.STOPPED
    row.save(
        update_fields=["status", "presentation_date", "pre_debit_notified_at", "last_return_code"]
    )
    if not policy.retryable and mandate.status == S.ACTIVE:
        action = ReturnCodePolicy.MandateAction
        to = {action.SUSPEND: S.SUSPENDED, action.CANCEL: S.CANCELLED}.get(policy.mandate_action)
        if to:
            _mandate_stop(
                mandate, to, actor=None, remarks=f"NACH return {return_code}: {policy.description}"
            )
    _bounce_notice(row, return_code, policy)
    return "applied"


def _bounce_notice(row: ScheduledPresentation, return_code: str, policy) -> None:
    from notifications.services import notification_queue

    product = loan_product(row.mandate.loan.product_id)
    charge = product.bounce_charge * (1 + product.gst_rate_on_charges / 100)
    try:
        notification_queue(
            template_code="bounce_notice",
            channel="SMS",
            recipient=row.mandate.payer.mobile,
            context={
                "customer_name": row.mandate.payer.name,
                "amount": row.amount,
                "loan_number": row.mandate.loan.loan_number,
                "due_date": row.due_date,
                "return_reason": policy.description,
                "reason": policy.description,
                "return_code": return_code,
                "charge": charge.quantize(PAISA),
                "bounce_charge": charge.quantize(PAISA),
            },
            entity=f"mandates.scheduledpresentation#{row.pk}",
        )
    except ApplicationError:
        logger.exception("bounce notice for presentation %s not queued", row.pk)


def execution_result_sync(*, execution_id: str) -> bool:
    """Bring DynamoDB in line with an applied result: the execution's status, and for a
    success the NACH payment through the ingestion flow (idempotent by execution id)."""
    result = (
        ExecutionResult.objects.select_related("presentation__mandate__loan")
        .filter(execution_id=execution_id)
        .first()
    )
    if result is None or result.dynamo_synced_at:
        return False
    item = MandateExecutionItem.get(execution_id, consistent_read=True)
    actions = [
        MandateExecutionItem.status.set(result.status),
        MandateExecutionItem.result_at.set(iso(result.received_at)),
    ]
    if result.return_code:
        actions += [
            MandateExecutionItem.return_code.set(result.return_code),
            MandateExecutionItem.return_reason.set(result.reason or result.return_code),
        ]
    if result.status == "SUCCESS":
        try:
            ingested = payment_ingest(
                payment=PaymentInput(
                    loan_number=item.loan_number,
                    amount=from_paise(item.amount_paise),
                    mode="NACH",
                    receipt_number=f"NACH-{execution_id}",
                    collector=f"NACH {item.partner_code}",
                    external_reference=item.umrn,
                ),
                idempotency_key=f"nach-{execution_id}",
                principal=_NachSystem(),
                source=f"nach:{item.partner_code}",
            )
        except DuplicateReceipt as exc:
            # The receipt NACH-<execution> is this execution's own: it was recorded by an
            # earlier sync whose idempotency key has expired since. Not a second payment.
            actions.append(MandateExecutionItem.txn_id.set(exc.txn_id))
        except ApplicationError as exc:
            if exc.status >= 500:
                raise  # the store is down: the sweep syncs it later
            # e.g. the loan was closed meanwhile: the money came, staff must refund it
            logger.error("NACH success %s not recorded as a payment: %s", execution_id, exc)
            actions.append(MandateExecutionItem.return_reason.set(f"not posted: {exc}"[:200]))
        else:
            actions.append(MandateExecutionItem.txn_id.set(ingested.body["txn_id"]))
    item.update(actions=actions)
    ExecutionResult.objects.filter(pk=result.pk).update(dynamo_synced_at=timezone.now())
    return True


def execution_results_sync_pending(*, limit: int = 200) -> int:
    synced = 0
    for execution_id in ExecutionResult.objects.filter(dynamo_synced_at__isnull=True).values_list(
        "execution_id", flat=True
    )[:limit]:
        try:
            synced += execution_result_sync(execution_id=execution_id)
        except ApplicationError:
            logger.warning("result %s not synced yet", execution_id)
    return synced


def sandbox_report(*, partner_code: str, execution_ids: list[str]) -> dict[str, int]:
    """The sandbox partner's answers, through the same service as the results API."""
    from ..partners import sandbox_results

    pairs = []
    for execution_id in execution_ids:
        row = ScheduledPresentation.objects.select_related("mandate").get(
            pk=int(execution_id.split("-")[0])
        )
        pairs.append((execution_id, row.mandate.account_number))
    counts: dict[str, int] = {}
    for result in sandbox_results(pairs):
        outcome = execution_result_apply(partner_code=partner_code, **result)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
