"""Every write to loan master data goes through these services."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from accounts.models import User
from accounts.scoping import scope_queryset
from approvals.services import KindHandler, approval_request_create
from core.errors import ApplicationError
from core.jobs import job_heartbeat, job_held_for, job_run
from core.models import JobRun
from core.money import PAISA

from .dues import DUES_SQL, dues_of
from .models import Customer, Instalment, LoanAccount, LoanCharge
from .schedule import build_schedule

ZERO = Decimal("0.00")


class ChargeNotWaivable(ApplicationError):
    code = "charge_not_waivable"


NUMBER_SEQUENCES = {
    "customer": ("C", "loans_customer_number_seq"),
    "loan": ("LN", "loans_loan_number_seq"),
}


def next_business_number(kind: str) -> str:
    """Customer and loan numbers from Postgres sequences: unique under concurrency."""
    prefix, sequence = NUMBER_SEQUENCES[kind]
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(%s)", [sequence])
        (value,) = cursor.fetchone()
    return f"{prefix}{value:010d}"


@transaction.atomic
def customer_create(*, actor: User | None, **fields) -> Customer:
    customer = Customer(**fields)
    customer.customer_number = next_business_number("customer")
    customer.full_clean()
    customer.save()
    return customer


@transaction.atomic
def customer_update(*, customer_id: int, actor: User | None, **changes) -> Customer:
    """Change a customer's details (as validated by the admin's form), under the row's lock.
    The save is audited by the change tracking."""
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    for name, value in changes.items():
        setattr(customer, name, value)
    customer.save()
    return customer


@transaction.atomic
def loan_account_create(
    *,
    customer: Customer,
    product,
    branch,
    sanctioned_amount: Decimal,
    disbursed_amount: Decimal,
    tenure_months: int,
    due_day: int,
    disbursed_on,
    interest_rate: Decimal | None = None,
    actor: User | None,
) -> LoanAccount:
    """Open a loan account and generate its repayment schedule (reducing-balance EMI)."""
    loan = LoanAccount(
        customer=customer,
        product=product,
        branch=branch,
        sanctioned_amount=sanctioned_amount,
        disbursed_amount=disbursed_amount,
        interest_rate=product.interest_rate if interest_rate is None else interest_rate,
        tenure_months=tenure_months,
        due_day=due_day,
        disbursed_on=disbursed_on,
    )
    loan.loan_number = next_business_number("loan")
    loan.full_clean()
    loan.save()
    loan_schedule_generate(loan=loan)
    return loan


@transaction.atomic
def loan_update(*, loan_id: int, actor: User | None, **changes) -> LoanAccount:
    """Change what may change on an open loan (its terms are fixed once disbursed), under
    the row's lock. The save is audited by the change tracking."""
    loan = LoanAccount.objects.select_for_update().get(pk=loan_id)
    for name, value in changes.items():
        setattr(loan, name, value)
    loan.save()
    return loan


def loan_schedule_generate(*, loan: LoanAccount) -> list[Instalment]:
    """(Re)build the schedule of a loan nothing has been paid on, and its outstanding totals."""
    if Instalment.objects.filter(loan=loan).exclude(status=Instalment.Status.DUE).exists():
        raise ValueError(f"{loan}: the schedule has payments and cannot be regenerated")
    Instalment.objects.filter(loan=loan).delete()
    emi_amount, rows = build_schedule(
        principal=loan.disbursed_amount,
        annual_rate_percent=loan.interest_rate,
        tenure_months=loan.tenure_months,
        frequency=loan.product.emi_frequency,
        disbursed_on=loan.disbursed_on,
        due_day=loan.due_day,
    )
    instalments = Instalment.objects.bulk_create(
        Instalment(
            loan=loan,
            number=row.number,
            due_date=row.due_date,
            principal_due=row.principal,
            interest_due=row.interest,
        )
        for row in rows
    )
    loan.emi_amount = emi_amount
    loan_dues_refresh(loan=loan)
    return instalments


DUES_FIELDS = (
    "next_due_date",
    "next_due_amount",
    "overdue_principal",
    "overdue_interest",
    "overdue_charges",
    "dpd",
    "bucket",
)
BALANCE_FIELDS = (
    "emi_amount",
    "outstanding_principal",
    "outstanding_interest",
    "outstanding_charges",
    *DUES_FIELDS,
    "dues_as_of",
)
# not audited: recomputed from the instalments and the postings
DERIVED_FIELDS = (*DUES_FIELDS, "dues_as_of", "last_payment_date", "last_payment_amount")


def loan_dues_refresh(*, loan: LoanAccount, as_of: date | None = None) -> LoanAccount:
    """Recompute the loan's balances from its instalments and save them: what it owes by
    component over the whole schedule (outstanding), and its dues as of ``as_of`` (the
    business date, today in IST by default: next due, arrears, DPD, bucket; ``loans.dues``).

    Call it inside the transaction that changed the instalments, with the loan row locked
    (a posting, a reversal, a charge raised or waived, a new schedule). A loan without a
    schedule (the benchmark's bulk-loaded loans carry none) keeps the figures it has: no
    instalments is not the same as nothing owed."""
    instalments = list(Instalment.objects.filter(loan=loan).only(*Instalment.SCHEDULE_FIELDS))
    if not instalments:
        return loan
    as_of = as_of or timezone.localdate()
    for component in ("principal", "interest", "charges"):
        setattr(
            loan,
            f"outstanding_{component}",
            sum((_owed(i, component) for i in instalments), ZERO),
        )
    dues = dues_of(instalments, as_of)
    for name in DUES_FIELDS:
        setattr(loan, name, getattr(dues, name))
    loan.dues_as_of = as_of
    loan.save(update_fields=[*BALANCE_FIELDS, "updated_at"])
    return loan


def _owed(inst: Instalment, component: str) -> Decimal:
    return getattr(inst, f"{component}_due") - getattr(inst, f"{component}_paid")


# --- Dues of every loan (nightly) -------------------------------------------------------

DUES_JOB = "loans_dues_refresh"
DUES_LEASE = timedelta(seconds=settings.LOANS_DUES_LEASE_SECONDS)
DUES_BATCH = 10_000  # loan ids per statement and per transaction: about a second each


def loans_dues_refresh(
    *,
    as_of: date,
    progress: Callable[[int], None] | None = None,
    after_id: int = 0,
    on_batch: Callable[[int, int], None] | None = None,
) -> int:
    """The dues of every active loan with a schedule as of ``as_of``, set-based: one
    ``UPDATE ... FROM`` an aggregate of the instalments (``loans.dues.DUES_SQL``) per range
    of ``DUES_BATCH`` loan ids above ``after_id``, each range in its own transaction.
    ``on_batch(upto_id, written)`` runs inside that transaction (a checkpoint commits with
    the range it records); ``progress(ids)`` after it. Returns the loans written.

    A loan a posting changed while its range was being written keeps the posting's figures
    (the statement skips it); one of those still not as of ``as_of`` is then refreshed on
    its own, under its row lock."""
    last_id = LoanAccount.objects.aggregate(last=Max("id"))["last"] or 0
    written, low = 0, after_id
    while low < last_id:
        high = min(low + DUES_BATCH, last_id)
        with transaction.atomic():
            count = _dues_range_refresh(as_of=as_of, after_id=low, upto_id=high)
            if on_batch:
                on_batch(high, count)
        written += count
        if progress:
            progress(high - low)
        low = high
    return written


def _dues_range_refresh(*, as_of: date, after_id: int, upto_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(DUES_SQL, {"as_of": as_of, "after": after_id, "upto": upto_id})
        written = cursor.rowcount
    missed = (
        LoanAccount.objects.filter(
            pk__gt=after_id, pk__lte=upto_id, status=LoanAccount.Status.ACTIVE
        )
        .filter(Q(dues_as_of__isnull=True) | ~Q(dues_as_of=as_of))
        .filter(Exists(Instalment.objects.filter(loan=OuterRef("pk"))))
        .values_list("pk", flat=True)
    )
    for loan in LoanAccount.objects.select_for_update().filter(pk__in=list(missed)):
        loan_dues_refresh(loan=loan, as_of=as_of)
        written += 1
    return written


def loans_dues_daily(
    *, as_of: date, force: bool = False, progress: Callable[[int], None] | None = None
) -> JobRun | None:
    """``loans_dues_refresh`` once per date (the run-once guard of ``core.jobs``): None
    when the date is done already (unless ``force``) or another worker holds it. The
    checkpoint is the last loan id written: a run taken over (failed, or its worker died)
    resumes after it; a forced rerun of a done date starts over. Its ``counts``: loans."""
    with job_run(DUES_JOB, as_of, lease=DUES_LEASE, force=force) as run:
        if run is None:
            return None

        def checkpoint(upto_id: int, written: int) -> None:
            loans = run.counts.get("loans", 0) + written
            job_heartbeat(run, progress={"after_id": upto_id}, counts={"loans": loans})

        loans_dues_refresh(
            as_of=as_of,
            after_id=run.progress.get("after_id", 0),
            progress=progress,
            on_batch=checkpoint,
        )
    return run


def loans_dues_held_for(*, as_of: date) -> float | None:
    """Seconds until the lease of the date's unfinished run expires, when a worker holds
    it (the task then tries again, to resume a run killed half-way)."""
    return job_held_for(name=DUES_JOB, key=as_of)


# --- Charges --------------------------------------------------------------------------


def loan_charge_raise(
    *,
    loan: LoanAccount,
    instalment: Instalment,
    kind: str,
    amount: Decimal,
    gst_rate: Decimal,
    reference: str,
    reason: str,
) -> tuple[LoanCharge, bool]:
    """Raise a charge (plus GST) on an instalment, once per ``reference``. Call inside the
    transaction of what caused it; the loan row must be locked by the caller."""
    existing = LoanCharge.objects.filter(reference=reference).first()
    if existing is not None:
        return existing, False
    gst = (amount * gst_rate / 100).quantize(PAISA, ROUND_HALF_UP)
    charge = LoanCharge.objects.create(
        loan=loan,
        instalment=instalment,
        kind=kind,
        amount=amount,
        gst=gst,
        total=amount + gst,
        reference=reference,
        reason=reason,
    )
    Instalment.objects.filter(pk=instalment.pk).update(charges_due=F("charges_due") + charge.total)
    _instalment_status_refresh(instalment.pk)
    loan_dues_refresh(loan=loan)
    return charge, True


def _instalment_status_refresh(instalment_id: int) -> None:
    inst = Instalment.objects.get(pk=instalment_id)
    if inst.derived_status != inst.status:
        Instalment.objects.filter(pk=instalment_id).update(status=inst.derived_status)


def loan_charge_waiver_request(*, charge_id: int, reason: str, actor: User):
    charge = (
        scope_queryset(LoanCharge.objects.select_related("loan"), actor)
        .filter(pk=charge_id)
        .first()
    )
    if charge is None:
        raise ChargeNotWaivable("No such charge that you may see.", code="not_found", status=404)
    if charge.waived_at:
        raise ChargeNotWaivable("This charge is already waived.")
    return approval_request_create(
        kind="CHARGE_WAIVER",
        branch_id=charge.loan.branch_id,
        entity=f"loans.loancharge#{charge.pk}",
        entity_repr=f"{charge.get_kind_display()} ₹{charge.total} on {charge.loan.loan_number}",
        reason=reason,
        payload={"charge_id": charge.pk},
        actor=actor,
    )


def loan_charge_waive(*, charge_id: int, actor: User) -> LoanCharge:
    """Waive what is still unpaid of a charge (runs inside the approval's transaction)."""
    from django.utils import timezone

    charge = LoanCharge.objects.select_for_update().get(pk=charge_id)
    if charge.waived_at:
        raise ChargeNotWaivable("This charge is already waived.")
    loan = LoanAccount.objects.select_for_update().get(pk=charge.loan_id)
    inst = Instalment.objects.select_for_update().get(pk=charge.instalment_id)
    unpaid = inst.charges_due - inst.charges_paid
    waived = min(charge.total, unpaid)
    if waived <= 0:
        raise ChargeNotWaivable("This charge has been paid already; nothing to waive.")
    inst.charges_due -= waived
    inst.save(update_fields=["charges_due"])
    _instalment_status_refresh(inst.pk)
    charge.waived_amount = waived
    charge.waived_at = timezone.now()
    charge.save(update_fields=["waived_amount", "waived_at"])
    loan_dues_refresh(loan=loan)
    return charge


def _apply_waiver(*, request, actor) -> None:
    loan_charge_waive(charge_id=request.payload["charge_id"], actor=actor)


# The approval kinds of this app, registered by LoansConfig.ready().
APPROVAL_KINDS = {
    "CHARGE_WAIVER": KindHandler(
        maker_permission="loans.request_waiver",
        checker_permission="loans.approve_waiver",
        apply=_apply_waiver,
    ),
}
