"""A loan's balances and dues recomputed from its instalments (one loan, under its lock, by
what changed them), and every loan's dues at once, nightly: set-based, in ranges of ids,
once per date. The figures themselves are ``loans.dues``'s (a pure module)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.utils import timezone

from core.jobs import job_heartbeat, job_held_for, job_run
from core.models import JobRun

from ..dues import DUES_SQL, dues_of
from ..models import Instalment, LoanAccount

ZERO = Decimal("0.00")

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
    loan.save(update_fields=[*loan_dues_set(loan=loan, instalments=instalments, as_of=as_of)])
    return loan


def loan_dues_set(
    *, loan: LoanAccount, instalments: list[Instalment], as_of: date | None = None
) -> tuple[str, ...]:
    """``loan_dues_refresh`` without its read and its write, for a caller that holds the
    loan's instalments (all of them, as it changed them) and saves the loan itself, in one
    statement with its own changes: sets the balances and dues on ``loan`` and returns the
    fields to save."""
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
    return (*BALANCE_FIELDS, "updated_at")


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
