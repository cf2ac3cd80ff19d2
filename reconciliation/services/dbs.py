"""The DBS figures: the day's deposits against its DCR's cash, and the flags they raise."""

from __future__ import annotations

import datetime

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Branch
from core.money import inr

from ..models import FROZEN, ZERO, Dbs, Dcr, Deposit, Status
from ._common import DcrRef

_DBS = Dbs._meta.db_table


_DBS_LOCKED_SQL = (  # identifiers from the models, values are parameters
    f"SELECT d.*, b.cash_in_hand_limit AS branch_cash_limit, "  # noqa: S608
    f"(SELECT p.closing_cash FROM {_DBS} p WHERE p.branch_id = d.branch_id "
    "AND p.business_date < d.business_date ORDER BY p.business_date DESC LIMIT 1) "
    "AS previous_closing, "
    f"EXISTS (SELECT 1 FROM {Deposit._meta.db_table} x WHERE x.branch_id = d.branch_id "
    "AND x.deposit_date = d.business_date) AS has_deposits "
    f"FROM {_DBS} d JOIN {Branch._meta.db_table} b ON b.id = d.branch_id "
    "WHERE d.branch_id = %s AND d.business_date = %s FOR UPDATE OF d"
)


def _dbs_locked(branch_id: int, business_date: datetime.date) -> Dbs:
    """The DBS row, locked, with what its figures need in the same round trip: the
    previous closing cash, whether the date has any deposit, and the branch's cash limit.
    One SQL statement: the ORM spent about 4 ms of CPU compiling this query, which the
    daily job pays for every branch."""
    for _ in range(2):
        dbs = next(iter(Dbs.objects.raw(_DBS_LOCKED_SQL, [branch_id, business_date])), None)
        if dbs is not None:
            return dbs
        Dbs.objects.bulk_create(
            [Dbs(branch_id=branch_id, business_date=business_date)], ignore_conflicts=True
        )
    raise Dbs.DoesNotExist(f"DBS {branch_id} {business_date}")  # the branch does not exist


@transaction.atomic
def dbs_refresh(*, branch_id: int, business_date: datetime.date) -> Dbs:
    """Compute (or recompute) a DBS unless it is submitted or approved."""
    return _dbs_refresh(branch_id=branch_id, business_date=business_date)


def _dbs_refresh(
    *, branch_id: int, business_date: datetime.date, dcr_ref: DcrRef | None = None
) -> Dbs:
    dbs = _dbs_locked(branch_id, business_date)  # first: a deposit being recorded waits
    if dbs.status not in FROZEN:
        _dbs_compute(dbs, dcr_ref)
        _dbs_save_computed(dbs)
    return dbs


_DBS_COMPUTED = [
    "opening_cash", "cash_collected", "deposits_total", "deposit_count", "closing_cash",
    "cash_limit", "dcr", "computed_at", "flags",
]  # fmt: skip


_DBS_COMPUTED_FIELDS = [Dbs._meta.get_field(name) for name in _DBS_COMPUTED]


_DBS_UPDATE_SQL = (  # identifiers from the model, values are parameters
    f"UPDATE {_DBS} SET "  # noqa: S608
    f"{', '.join(f'{field.column} = %s' for field in _DBS_COMPUTED_FIELDS)} WHERE id = %s"
)


def _dbs_save_computed(dbs: Dbs) -> None:
    """``save(update_fields=_DBS_COMPUTED)`` as one fixed statement: the ORM compiled
    that UPDATE anew for every branch of the daily job. Values are adapted by each field's
    ``get_db_prep_save``, as the ORM does."""
    values = [f.get_db_prep_save(getattr(dbs, f.attname), connection) for f in _DBS_COMPUTED_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(_DBS_UPDATE_SQL, [*values, dbs.pk])


def _dbs_compute(dbs: Dbs, dcr_ref: DcrRef | None = None) -> None:
    """opening (the previous DBS's closing) + cash collected (the DCR's CASH) - deposits
    = closing cash in hand, and the flags."""
    if hasattr(dbs, "previous_closing"):  # read with the lock (_dbs_locked)
        previous = dbs.previous_closing
    else:
        previous = (
            Dbs.objects.filter(branch_id=dbs.branch_id, business_date__lt=dbs.business_date)
            .order_by("-business_date")
            .values_list("closing_cash", flat=True)
            .first()
        )
    dcr = dcr_ref or _dcr_ref(dbs.branch_id, dbs.business_date)
    deposits = []
    if getattr(dbs, "has_deposits", True):
        deposits = list(
            Deposit.objects.filter(
                branch_id=dbs.branch_id, deposit_date=dbs.business_date
            ).order_by("id")
        )
    dbs.opening_cash = previous if previous is not None else ZERO
    dbs.cash_collected = dcr.cash_amount if dcr else ZERO
    dbs.deposits_total = sum((d.amount for d in deposits), ZERO)
    dbs.deposit_count = len(deposits)
    dbs.closing_cash = dbs.opening_cash + dbs.cash_collected - dbs.deposits_total
    dbs.cash_limit = getattr(dbs, "branch_cash_limit", None)
    if dbs.cash_limit is None:
        dbs.cash_limit = dbs.branch.cash_in_hand_limit
    dbs.dcr_id = dcr.pk if dcr else None
    dbs.computed_at = timezone.now()
    dbs.flags = _dbs_flags(dbs, dcr, deposits)


def _dcr_ref(branch_id: int, business_date: datetime.date) -> DcrRef | None:
    found = (
        Dcr.objects.filter(branch_id=branch_id, business_date=business_date)
        .values_list("pk", "status", "cash_amount")
        .first()
    )
    return DcrRef(*found) if found else None


def _dbs_flags(dbs: Dbs, dcr: DcrRef | None, deposits: list[Deposit]) -> list[dict[str, str]]:
    flags = []
    if dbs.closing_cash > dbs.cash_limit:
        flags.append(
            {
                "code": "CASH_OVER_LIMIT",
                "message": f"Closing cash in hand {inr(dbs.closing_cash)} is above the branch "
                f"limit of {inr(dbs.cash_limit)}.",
            }
        )
    if dbs.closing_cash < 0:
        flags.append(
            {
                "code": "CASH_NEGATIVE",
                "message": f"More was deposited than was in hand: closing {inr(dbs.closing_cash)}.",
            }
        )
    without_slip = [d for d in deposits if not d.slip_number]
    if without_slip:
        flags.append(
            {
                "code": "DEPOSIT_WITHOUT_SLIP",
                "message": f"{len(without_slip)} deposit(s) without a slip number: "
                + ", ".join(inr(d.amount) for d in without_slip),
            }
        )
    slips = [d for d in deposits if d.slip_number]
    if slips:
        reused = (
            Deposit.objects.filter(
                slip_number__in={d.slip_number for d in slips},
                collection_account_id__in={d.collection_account_id for d in slips},
            )
            .exclude(pk__in=[d.pk for d in slips])
            .values_list("slip_number", "collection_account_id")
        )
        ours = {(d.slip_number, d.collection_account_id) for d in slips}
        twice = sorted({slip for slip, account in reused if (slip, account) in ours})
        if twice:
            flags.append(
                {
                    "code": "SLIP_USED_TWICE",
                    "message": "Slip number(s) also used by another deposit into the same "
                    "account: " + ", ".join(twice),
                }
            )
    if dcr is None or dcr.status != Status.APPROVED:
        state = "missing" if dcr is None else Status(dcr.status).label.lower()
        flags.append(
            {
                "code": "DCR_NOT_APPROVED",
                "message": f"The DCR of this date is not approved ({state}).",
            }
        )
    return flags
