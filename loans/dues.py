"""A loan's dues as of a date, from its instalments: pure Decimal arithmetic, no database.

- An instalment is *overdue* when its due date is before the as-of date and it is not
  fully paid; one due on the as-of date itself is due, not overdue.
- Arrears: what is unpaid of the overdue instalments, by component (principal, interest,
  charges).
- Days past due (DPD): days from the oldest overdue instalment's due date to the as-of
  date; 0 when nothing is overdue.
- Bucket, as RBI classifies by DPD: CURRENT 0, SMA-0 1-30, SMA-1 31-60, SMA-2 61-90,
  NPA over 90.
- Next due: the first instalment (by due date, then number) due on or after the as-of
  date and not fully paid, and what is unpaid of it (an advance paid on it counts).

``loans.services.loans_dues_refresh`` computes the same figures in SQL for every loan at
once (``DUES_SQL``); a test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Protocol

ZERO = Decimal("0.00")

# (highest DPD of the bucket, bucket); above the last: NPA
BUCKET_LIMITS = ((0, "CURRENT"), (30, "SMA0"), (60, "SMA1"), (90, "SMA2"))
NPA = "NPA"


class InstalmentLike(Protocol):
    number: int
    due_date: date
    principal_due: Decimal
    interest_due: Decimal
    charges_due: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    charges_paid: Decimal


@dataclass(frozen=True)
class Dues:
    next_due_date: date | None
    next_due_amount: Decimal
    overdue_principal: Decimal
    overdue_interest: Decimal
    overdue_charges: Decimal
    dpd: int
    bucket: str

    @property
    def overdue_amount(self) -> Decimal:
        return self.overdue_principal + self.overdue_interest + self.overdue_charges


def bucket_for(dpd: int) -> str:
    for limit, bucket in BUCKET_LIMITS:
        if dpd <= limit:
            return bucket
    return NPA


def dpd_range(bucket: str) -> tuple[int, int | None]:
    """The days past due of a bucket, inclusive (None: no upper bound)."""
    low = 0
    for limit, name in BUCKET_LIMITS:
        if name == bucket:
            return low, limit
        low = limit + 1
    if bucket != NPA:
        raise ValueError(f"no bucket {bucket!r}")
    return low, None


def unpaid(inst: InstalmentLike) -> Decimal:
    return (
        inst.principal_due
        + inst.interest_due
        + inst.charges_due
        - inst.principal_paid
        - inst.interest_paid
        - inst.charges_paid
    )


def is_overdue(inst: InstalmentLike, as_of: date) -> bool:
    return inst.due_date < as_of and unpaid(inst) > 0


def dues_of(instalments: Iterable[InstalmentLike], as_of: date) -> Dues:
    principal = interest = charges = ZERO
    oldest: date | None = None
    upcoming: InstalmentLike | None = None
    for inst in instalments:
        if inst.due_date < as_of:
            principal += inst.principal_due - inst.principal_paid
            interest += inst.interest_due - inst.interest_paid
            charges += inst.charges_due - inst.charges_paid
            if unpaid(inst) > 0 and (oldest is None or inst.due_date < oldest):
                oldest = inst.due_date
        elif unpaid(inst) > 0 and (
            upcoming is None or (inst.due_date, inst.number) < (upcoming.due_date, upcoming.number)
        ):
            upcoming = inst
    dpd = (as_of - oldest).days if oldest is not None else 0
    return Dues(
        next_due_date=upcoming.due_date if upcoming is not None else None,
        next_due_amount=unpaid(upcoming) if upcoming is not None else ZERO,
        overdue_principal=principal,
        overdue_interest=interest,
        overdue_charges=charges,
        dpd=dpd,
        bucket=bucket_for(dpd),
    )


# The same figures for every loan with instalments whose id is in (%(after)s, %(upto)s],
# written onto its ACTIVE loan account. ``seen`` is the row version (xmin) the aggregate
# read: a loan changed by a posting after this statement's snapshot fails that condition
# when the UPDATE re-checks the new row version, and keeps the figures the posting wrote.
_UNPAID = (
    "(i.principal_due + i.interest_due + i.charges_due"
    " - i.principal_paid - i.interest_paid - i.charges_paid)"
)
DUES_SQL = f"""
WITH figures AS (
    SELECT
        i.loan_id,
        SUM(i.principal_due - i.principal_paid) FILTER (WHERE i.due_date < %(as_of)s) AS op,
        SUM(i.interest_due - i.interest_paid) FILTER (WHERE i.due_date < %(as_of)s) AS oi,
        SUM(i.charges_due - i.charges_paid) FILTER (WHERE i.due_date < %(as_of)s) AS oc,
        MIN(i.due_date) FILTER (WHERE i.due_date < %(as_of)s AND {_UNPAID} > 0) AS oldest,
        (ARRAY_AGG(i.due_date ORDER BY i.due_date, i.number)
            FILTER (WHERE i.due_date >= %(as_of)s AND {_UNPAID} > 0))[1] AS next_date,
        (ARRAY_AGG({_UNPAID} ORDER BY i.due_date, i.number)
            FILTER (WHERE i.due_date >= %(as_of)s AND {_UNPAID} > 0))[1] AS next_amount
    FROM loans_instalment i
    WHERE i.loan_id > %(after)s AND i.loan_id <= %(upto)s
    GROUP BY i.loan_id
), dues AS (
    SELECT f.*, l.xmin AS seen, COALESCE(%(as_of)s - f.oldest, 0) AS days
    FROM figures f JOIN loans_loanaccount l ON l.id = f.loan_id
    WHERE l.status = 'ACTIVE'
)
UPDATE loans_loanaccount AS l SET
    next_due_date = d.next_date,
    next_due_amount = COALESCE(d.next_amount, 0),
    overdue_principal = COALESCE(d.op, 0),
    overdue_interest = COALESCE(d.oi, 0),
    overdue_charges = COALESCE(d.oc, 0),
    dpd = d.days,
    bucket = CASE
        {" ".join(f"WHEN d.days <= {limit} THEN '{bucket}'" for limit, bucket in BUCKET_LIMITS)}
        ELSE '{NPA}' END,
    dues_as_of = %(as_of)s
FROM dues d
WHERE l.id = d.loan_id AND l.xmin = d.seen AND l.status = 'ACTIVE'
"""  # noqa: S608 - built from this module's constants; the values are parameters
