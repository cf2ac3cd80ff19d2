"""Building DCRs from DynamoDB.

Read the branch-day from the ``branch_day`` index (outside any database transaction; many
branch-days at once in a thread pool), then upsert the DCR, its totals and, for a closed
date, the DBS in one Postgres transaction per branch. The figures depend only on what
DynamoDB holds, so re-running gives the same figures. A SUBMITTED or APPROVED DCR is never
rewritten: what differs is recorded as a ``LateArrival``.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts import refdata as branch_refs
from accounts.models import Branch
from accounts.scoping import scope_queryset
from core.money import from_paise
from core.workflow import require_permission

from ..exceptions import NotAllowed
from ..models import FROZEN, Dcr, DcrLine, LateArrival, Status
from ..selectors import COLLECTED, READ_WORKERS, DayFigures, branch_days_figures
from ._common import DcrRef, _is_closed, _late_arrivals_resolve, _line_rows
from .dbs import _dbs_refresh

logger = logging.getLogger(__name__)


BUILD_DCR = "reconciliation.build_dcr"


@dataclass
class BuildReport:
    written: int = 0
    frozen: int = 0
    stale: int = 0
    late_arrivals: int = 0
    transactions: int = 0
    failed: dict[tuple[int, datetime.date], str] = field(default_factory=dict)

    def add(self, outcome: str, late: int) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.late_arrivals += late


def dcr_build(*, branch_id: int, business_date: datetime.date) -> Dcr:
    """Build (or refresh) one DCR, and its DBS when the date is closed."""
    report = dcr_build_many(pairs=[(branch_id, business_date)], workers=1)
    if report.failed:
        raise next(iter(report.failed.values()))
    return Dcr.objects.get(branch_id=branch_id, business_date=business_date)


def dcr_build_many(
    *,
    pairs: Iterable[tuple[int, datetime.date]],
    with_dbs: bool = True,
    workers: int = READ_WORKERS,
    on_done: Callable[[int, datetime.date], None] | None = None,
) -> BuildReport:
    """Build DCRs of many branch-days: reads run concurrently, each upsert is its own
    Postgres transaction (in this thread). A branch-day that fails is reported in
    ``failed`` (its transaction rolled back: no half-written DCR) and the others go on."""
    pairs = list(dict.fromkeys(pairs))
    branches = branch_refs.branches({branch_id for branch_id, _ in pairs})  # cut-offs, cached
    report = BuildReport()
    for pair, result in branch_days_figures(pairs, workers=workers):
        if isinstance(result, BaseException):
            report.failed[pair] = result
            logger.warning("DCR %s %s: read failed: %s", *pair, result)
            continue
        report.transactions += len(result.txns)
        try:
            with transaction.atomic():  # one transaction per branch-day, no savepoints inside
                outcome, late, dcr_ref = _dcr_write(branch=branches[pair[0]], figures=result)
                if with_dbs and outcome == "written" and _is_closed(branches[pair[0]], pair[1]):
                    _dbs_refresh(branch_id=pair[0], business_date=pair[1], dcr_ref=dcr_ref)
        except DatabaseError as exc:
            report.failed[pair] = exc
            logger.warning("DCR %s %s: not written: %s", *pair, str(exc).splitlines()[0])
            continue
        report.add(outcome, late)
        if on_done is not None:
            on_done(*pair)
    return report


@transaction.atomic
def dcr_write(*, branch: Branch, figures: DayFigures) -> tuple[str, int]:
    """Upsert one DCR from its figures: ``("written", 0)``, ``("frozen", late arrivals
    recorded)`` for a submitted or approved DCR, or ``("stale", 0)`` when a newer read
    has been written meanwhile."""
    outcome, late, _ = _dcr_write(branch=branch, figures=figures)
    return outcome, late


def _dcr_write(*, branch: Branch, figures: DayFigures) -> tuple[str, int, DcrRef | None]:
    totals = figures.totals()
    by_mode, excluded = totals["MODE"], totals["EXCLUDED"]
    cash = from_paise(by_mode.get("CASH", (0, 0))[1])
    row = _dcr_upsert(
        branch_id=branch.pk,
        business_date=figures.business_date,
        is_provisional=not _is_closed(branch, figures.business_date, figures.read_started_at),
        collected_count=sum(count for count, _ in by_mode.values()),
        collected_amount=from_paise(sum(paise for _, paise in by_mode.values())),
        cash_amount=cash,
        excluded_count=sum(count for count, _ in excluded.values()),
        excluded_amount=from_paise(sum(paise for _, paise in excluded.values())),
        txn_ids=figures.collected_ids(),
        excluded_txn_ids=figures.excluded_ids(),
        read_started_at=figures.read_started_at,
        computed_at=timezone.now(),
        lines=_line_rows(totals),
    )
    if row is None:  # not written: frozen, or a newer read got there first
        dcr = _dcr_locked(branch.pk, figures.business_date)
        if dcr.status in FROZEN:
            return "frozen", _late_arrivals_record(dcr, figures), None
        return "stale", 0, None
    dcr_id, status = row
    if status == Status.RETURNED:
        _late_arrivals_resolve(dcr_id)
    return "written", 0, DcrRef(dcr_id, status, cash)


_UPSERT_COLUMNS = (
    "is_provisional", "collected_count", "collected_amount", "cash_amount", "excluded_count",
    "excluded_amount", "txn_ids", "excluded_txn_ids", "read_started_at", "computed_at",
)  # fmt: skip


_T = Dcr._meta.db_table


# Identifiers come from the models, values are parameters.
_L = DcrLine._meta.db_table


_SET = ", ".join(f"{c} = EXCLUDED.{c}" for c in _UPSERT_COLUMNS)


# The id lists (2,500 ids a branch-day) go as one comma-joined string split by PostgreSQL:
# psycopg would quote-check every element of a list in Python (a third of a write's CPU).
_ID_LISTS = ("txn_ids", "excluded_txn_ids")


_PLACEHOLDERS = {c: "string_to_array(%s, ',')" if c in _ID_LISTS else "%s" for c in _UPSERT_COLUMNS}


_UPSERT_SQL = (  # the DCR's upsert, then its lines: one statement
    f"WITH up AS (INSERT INTO {_T} (branch_id, business_date, status, remarks, "  # noqa: S608
    f"{', '.join(_UPSERT_COLUMNS)}) "
    f"VALUES (%s, %s, %s, '', {', '.join(_PLACEHOLDERS[c] for c in _UPSERT_COLUMNS)}) "
    f"ON CONFLICT (branch_id, business_date) DO UPDATE SET {_SET} "
    f"WHERE {_T}.status NOT IN (%s, %s) AND ({_T}.read_started_at IS NULL "
    f"OR {_T}.read_started_at <= EXCLUDED.read_started_at) "
    "RETURNING id, status, (xmax = 0) AS inserted), "
    "new_lines AS (SELECT * FROM unnest(%s::text[], %s::text[], %s::int[], %s::numeric[]) "
    "AS l(dimension, key, count, amount)), "
    f"gone AS (DELETE FROM {_L} d USING up WHERE d.dcr_id = up.id AND NOT up.inserted "
    "AND (d.dimension, d.key) NOT IN (SELECT dimension, key FROM new_lines)), "
    f"put AS (INSERT INTO {_L} (dcr_id, dimension, key, count, amount) "
    "SELECT up.id, n.dimension, n.key, n.count, n.amount FROM up, new_lines n "
    "ON CONFLICT (dcr_id, dimension, key) DO UPDATE "
    "SET count = EXCLUDED.count, amount = EXCLUDED.amount) "
    "SELECT id, status FROM up"
)


def _dcr_upsert(
    *, branch_id: int, business_date: datetime.date, lines: list[tuple], **values
) -> tuple | None:
    """One statement (so one round trip, atomic by itself): insert the DCR, or update it
    unless it is frozen or holds a newer read, and put its lines. Returns (id, status), or
    None when the DCR was left as it is (its lines too)."""
    for column in _ID_LISTS:  # transaction ids are ULIDs: never a comma
        joined = ",".join(values[column])
        if joined.count(",") != max(len(values[column]) - 1, 0):
            raise ValueError(f"a transaction id with a comma in {column}")
        values[column] = joined
    params = [branch_id, business_date, Status.DRAFT, *(values[c] for c in _UPSERT_COLUMNS)]
    columns = [list(column) for column in zip(*lines, strict=True)] if lines else [[]] * 4
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT_SQL, [*params, Status.SUBMITTED, Status.APPROVED, *columns])
        return cursor.fetchone()


def _dcr_locked(branch_id: int, business_date: datetime.date) -> Dcr:
    locked = Dcr.objects.select_for_update(of=("self",)).select_related("branch")
    dcr = locked.filter(branch_id=branch_id, business_date=business_date).first()
    if dcr is None:
        Dcr.objects.bulk_create(
            [Dcr(branch_id=branch_id, business_date=business_date)], ignore_conflicts=True
        )
        dcr = locked.get(branch_id=branch_id, business_date=business_date)
    return dcr


def _late_arrivals_record(dcr: Dcr, figures: DayFigures) -> int:
    """Transactions the frozen DCR does not count as they now stand: new ones, and counted
    ones that have failed or been reversed since. Returns how many are newly recorded."""
    counted, excluded = set(dcr.txn_ids), set(dcr.excluded_txn_ids)
    found = []
    for txn_id, (mode, status, collector, paise) in figures.txns.items():
        if txn_id in counted:
            if status in COLLECTED:
                continue
            kind = LateArrival.Kind.NOT_COLLECTED
        elif txn_id in excluded:
            continue
        else:
            kind = LateArrival.Kind.NEW
        found.append((txn_id, kind, mode, status, collector, paise))
    if not found:
        return 0
    known = set(LateArrival.objects.filter(dcr=dcr).values_list("txn_id", "kind"))
    new = [
        LateArrival(
            dcr=dcr,
            txn_id=txn_id,
            kind=kind,
            mode=mode,
            status=status,
            collector=collector[:200],
            amount=from_paise(paise),
        )
        for txn_id, kind, mode, status, collector, paise in found
        if (txn_id, kind) not in known
    ]
    LateArrival.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def dcr_build_range(
    *,
    date_from: datetime.date,
    date_to: datetime.date | None = None,
    branch_ids: Iterable[int] | None = None,
    actor=None,
    on_done: Callable[[int, datetime.date], None] | None = None,
) -> BuildReport:
    """On demand (admin, command, task): every branch-day of the range, for the given
    branches or all active ones. With an ``actor``, only branches they may see, and only
    with the build permission."""
    date_to = date_to or date_from
    if date_to < date_from:
        raise NotAllowed("The end date is before the start date.", code="invalid", status=400)
    if (date_to - date_from).days > 366:
        raise NotAllowed("Build at most a year at a time.", code="invalid", status=400)
    branches = Branch.objects.filter(is_active=True)
    if branch_ids is not None:
        branches = Branch.objects.filter(pk__in=list(branch_ids))
    if actor is not None:
        require_permission(actor, BUILD_DCR, "You may not build DCRs.")
        branches = scope_queryset(branches, actor)
    days = [date_from + datetime.timedelta(days=n) for n in range((date_to - date_from).days + 1)]
    pairs = [
        (branch_id, day) for branch_id in branches.values_list("pk", flat=True) for day in days
    ]
    return dcr_build_many(pairs=pairs, on_done=on_done)
