"""Every write to loan master data goes through these services."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q
from django.utils import timezone

from accounts.models import User, mobile_digits
from accounts.scoping import scope_queryset
from approvals.services import KindHandler, approval_request_create
from audit.masking import mask_value
from core.context import acting_as
from core.errors import ApplicationError
from core.jobs import job_heartbeat, job_held_for, job_run
from core.models import JobRun
from core.money import PAISA, inr

from .dues import DUES_SQL, dues_of
from .exceptions import CustomerChangeInvalid, CustomerChangeStale
from .models import (
    Customer,
    CustomerBankAccount,
    Instalment,
    LoanAccount,
    LoanCharge,
    collection_officer_problem,
)
from .schedule import build_schedule
from .selectors import customer_change_pending

ZERO = Decimal("0.00")
ASSIGN_COLLECTION_OFFICER = "loans.assign_collection_officer"


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
    The save is audited by the change tracking. The mobile and the PAN change only through
    maker-checker (``customer_change_request``)."""
    guarded = sorted(set(changes) & set(GUARDED_FIELDS))
    if guarded:
        raise CustomerChangeInvalid(
            f"The {', '.join(GUARDED_FIELDS[name] for name in guarded)} changes only through "
            "a change request that a checker approves.",
            field=guarded[0],
            code="maker_checker_required",
        )
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
    if "collection_officer" in changes:
        _collection_officer_check(loan, changes["collection_officer"], actor=actor)
    for name, value in changes.items():
        setattr(loan, name, value)
    loan.save()
    return loan


class CollectionOfficerRefused(ApplicationError):
    code = "collection_officer_refused"


def _collection_officer_check(loan: LoanAccount, officer: User | None, *, actor) -> None:
    """Only who may assign collectors (the branch manager) does, and only a user of the
    loan's branch collects it."""
    if actor is not None and not actor.has_perm(ASSIGN_COLLECTION_OFFICER):
        raise CollectionOfficerRefused(
            "Only the branch manager assigns a loan's collection officer.",
            field="collection_officer",
            status=403,
        )
    if officer is not None and (problem := collection_officer_problem(officer, loan.branch_id)):
        raise CollectionOfficerRefused(problem, field="collection_officer")


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
        entity_repr=f"{charge.get_kind_display()} {inr(charge.total)} on {charge.loan.loan_number}",
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


# --- Customer changes through maker-checker --------------------------------------------
# The mobile, the PAN and the bank accounts (add, change, remove, make primary) of a customer
# change only when a checker approves a maker's request. The request carries what it
# replaces ("old") and the new values ("new"); approving validates both again under the
# customer's lock, so a request overtaken by another change, or no longer valid, is refused
# and can only be returned. One pending request per customer (the approvals app's
# constraint): a checker always approves a change against what the customer has now.

CUSTOMER_CHANGE = "CUSTOMER_CHANGE"
GUARDED_FIELDS = {"mobile": "mobile", "pan": "PAN"}
BANK_FIELDS = ("holder_name", "bank_name", "account_number", "ifsc", "account_type")


class Change:
    """What a request changes (``payload["change"]``)."""

    MOBILE = "mobile"
    PAN = "pan"
    BANK_ADD = "bank_add"
    BANK_CHANGE = "bank_change"
    BANK_REMOVE = "bank_remove"
    BANK_PRIMARY = "bank_primary"

    LABELS = {
        MOBILE: "Change of mobile",
        PAN: "Change of PAN",
        BANK_ADD: "New bank account",
        BANK_CHANGE: "Change of bank account",
        BANK_REMOVE: "Removal of bank account",
        BANK_PRIMARY: "New primary bank account",
    }
    ON_ACCOUNT = frozenset({BANK_CHANGE, BANK_REMOVE, BANK_PRIMARY})


def _bank_values(account: CustomerBankAccount) -> dict[str, str]:
    return {name: getattr(account, name) for name in BANK_FIELDS}


def _invalid(error: ValidationError, fields: dict[str, str] | None = None) -> CustomerChangeInvalid:
    """A model's ValidationError as our refusal, on the first field it names."""
    messages = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
    field, texts = next(iter(messages.items()))
    field = "" if field == "__all__" else field
    return CustomerChangeInvalid(" ".join(texts), field=(fields or {}).get(field, field) or None)


def customer_change_check(
    *, customer: Customer, change: str, new: dict | None = None, account_id: int | None = None
) -> tuple[dict, dict]:
    """``(old, new)`` of a change of ``customer``, the new values cleaned (a mobile typed
    with +91 or spaces, a PAN in lower case), or ``CustomerChangeInvalid`` on the field at
    fault. Used by the request form (field messages), the request and the approval."""
    new = dict(new or {})
    if change in (Change.MOBILE, Change.PAN):
        field = change
        value = (new.get(field) or "").strip()
        value = mobile_digits(value) if field == Change.MOBILE else value.upper()
        candidate = Customer(**{field: value})
        others = [f.name for f in Customer._meta.fields if f.name != field]
        try:
            candidate.clean_fields(exclude=others)
        except ValidationError as exc:
            raise _invalid(exc) from None
        old = getattr(customer, field)
        if value == old:
            raise CustomerChangeInvalid(
                f"That is the customer's {GUARDED_FIELDS[field]} already.", field=field
            )
        return {field: old}, {field: value}
    if change == Change.BANK_ADD:
        return {}, _bank_check(customer, None, new)
    if change not in Change.ON_ACCOUNT:
        raise CustomerChangeInvalid(f"Unknown change {change!r}.", field="change")
    account = customer.bank_accounts.filter(pk=account_id).first() if account_id else None
    if account is None:
        raise CustomerChangeInvalid(
            "The customer has no such bank account (any more).", field="account"
        )
    old = {**_bank_values(account), "is_primary": account.is_primary}
    if change == Change.BANK_CHANGE:
        cleaned = _bank_check(customer, account, new)
        if all(cleaned[name] == old[name] for name in BANK_FIELDS):
            raise CustomerChangeInvalid("Nothing would change.", field="account_number")
        return old, cleaned
    if change == Change.BANK_PRIMARY and account.is_primary:
        raise CustomerChangeInvalid("This account is the primary one already.", field="account")
    return old, {}


def _bank_check(customer: Customer, account: CustomerBankAccount | None, new: dict) -> dict:
    values = {name: (str(new.get(name) or "")).strip() for name in BANK_FIELDS}
    values["ifsc"] = values["ifsc"].upper()
    values["account_type"] = values["account_type"] or CustomerBankAccount.AccountType.SAVINGS
    candidate = CustomerBankAccount(customer=customer, is_primary=False, **values)
    if account is not None:  # its own row is no duplicate of itself
        candidate.pk, candidate._state.adding = account.pk, False
    try:
        candidate.full_clean()
    except ValidationError as exc:
        raise _invalid(exc, {"": "account_number"}) from None
    values["is_primary"] = bool(new.get("is_primary")) if account is None else account.is_primary
    return values


def customer_change_describe(customer: Customer, change: str, old: dict) -> str:
    """The request's subject as the inbox lists it (an account number masked)."""
    account = f" {mask_value(old['account_number'])}" if old.get("account_number") else ""
    return f"{Change.LABELS[change]}{account} of {customer}"[:200]


@transaction.atomic
def customer_change_request(
    *,
    customer_id: int,
    change: str,
    reason: str,
    actor: User,
    new: dict | None = None,
    account_id: int | None = None,
):
    """Ask for a change of a customer's mobile, PAN or bank accounts; a checker applies it
    (``customer_change_apply``). Refused: a customer the maker may not see, an invalid
    value (on its field), another change of the customer already pending."""
    customer = (
        scope_queryset(Customer.objects.select_for_update(of=("self",)), actor)
        .filter(pk=customer_id)
        .first()
    )
    if customer is None:
        raise CustomerChangeInvalid(
            "No such customer that you may see.", code="not_found", status=404
        )
    old, cleaned = customer_change_check(
        customer=customer, change=change, new=new, account_id=account_id
    )
    pending = customer_change_pending(customer=customer)
    if pending is not None:
        raise CustomerChangeInvalid(
            f"A change of this customer waits for a checker already (request #{pending.pk}): "
            "one at a time.",
            code="already_pending",
        )
    return approval_request_create(
        kind=CUSTOMER_CHANGE,
        branch_id=customer.branch_id,
        entity=f"loans.customer#{customer.pk}",
        entity_repr=customer_change_describe(customer, change, old),
        reason=reason,
        payload={
            "customer_id": customer.pk,
            "change": change,
            "account_id": account_id,
            "old": old,
            "new": cleaned,
        },
        actor=actor,
    )


def customer_change_apply(*, payload: dict, actor: User | None) -> Customer:
    """Carry out an approved change (inside the approval's transaction): the customer's row
    and bank accounts locked, what it replaces still what the customer has, the new values
    valid now; the saves are audited by the change tracking, in the checker's name."""
    customer = Customer.objects.select_for_update().get(pk=payload["customer_id"])
    list(customer.bank_accounts.select_for_update().order_by("pk"))
    change, account_id = payload["change"], payload.get("account_id")
    try:
        old, new = customer_change_check(
            customer=customer, change=change, new=payload.get("new"), account_id=account_id
        )
    except CustomerChangeInvalid as exc:
        raise CustomerChangeInvalid(
            f"This change cannot be made now: {exc} Return the request.", field=exc.field
        ) from None
    if old != payload.get("old", {}):
        raise CustomerChangeStale(
            "The customer's details changed since this was asked for; return the request."
        )
    with acting_as(actor):
        if change in (Change.MOBILE, Change.PAN):
            setattr(customer, change, new[change])
            customer.save(update_fields=[change])
        elif change == Change.BANK_ADD:
            primary = new.pop("is_primary")
            account = CustomerBankAccount.objects.create(customer=customer, **new)
            if primary or not customer.bank_accounts.exclude(pk=account.pk).exists():
                _bank_primary_set(customer, account)
        else:
            account = customer.bank_accounts.get(pk=account_id)
            if change == Change.BANK_CHANGE:
                for name in BANK_FIELDS:
                    setattr(account, name, new[name])
                account.save(update_fields=list(BANK_FIELDS))
            elif change == Change.BANK_REMOVE:
                account.delete()
            else:
                _bank_primary_set(customer, account)
    return customer


def _bank_primary_set(customer: Customer, account: CustomerBankAccount) -> None:
    for other in customer.bank_accounts.filter(is_primary=True).exclude(pk=account.pk):
        other.is_primary = False
        other.save(update_fields=["is_primary"])  # first: one primary at a time
    account.is_primary = True
    account.save(update_fields=["is_primary"])


def _apply_customer_change(*, request, actor) -> None:
    customer_change_apply(payload=request.payload, actor=actor)


# The approval kinds of this app, registered by LoansConfig.ready().
APPROVAL_KINDS = {
    "CHARGE_WAIVER": KindHandler(
        maker_permission="loans.request_waiver",
        checker_permission="loans.approve_waiver",
        apply=_apply_waiver,
    ),
    CUSTOMER_CHANGE: KindHandler(
        maker_permission="loans.request_customer_change",
        checker_permission="loans.approve_customer_change",
        apply=_apply_customer_change,
    ),
}
