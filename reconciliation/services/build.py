"""Every write of reconciliation: building DCRs from DynamoDB, the guarded daily job and
the 15-minute tick, the DCR and DBS workflows, deposits and bank statements.

Building a DCR: read the branch-day from the ``branch_day`` index (outside any database
transaction; many branch-days at once in a thread pool), then upsert the DCR, its totals
and, for a closed date, the DBS in one Postgres transaction per branch. The figures
depend only on what DynamoDB holds, so re-running gives the same figures. A SUBMITTED
or APPROVED DCR is never rewritten: what differs is recorded as a ``LateArrival``.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import secrets
import socket
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts import refdata as branch_refs
from accounts.models import Branch
from accounts.scoping import can_see_branch, scope_queryset
from approvals.models import SubjectContribution
from approvals.services import subject_contribution_record, subject_decide, subject_of
from core.money import from_paise
from core.workflow import require_permission, transition
from loans.models import CollectionAccount
from payments.services import business_date_for

from ..exceptions import (
    AlreadyDecided,
    BusinessDateOpen,
    DepositRejected,
    NotAllowed,
    ReportNotFound,
    StatementAlreadyImported,
    StatementRejected,
)
from ..models import (
    FROZEN,
    ZERO,
    Dbs,
    Dcr,
    DcrLine,
    Deposit,
    JobRun,
    LateArrival,
    StatementLine,
    StatementUpload,
    Status,
)
from ..selectors import (
    COLLECTED,
    READ_WORKERS,
    DayFigures,
    branch_day_figures,
    branch_days_figures,
)
from ..statements import statement_parse

logger = logging.getLogger(__name__)

SUBMIT_DCR = "reconciliation.submit_dcr"
APPROVE_DCR = "reconciliation.approve_dcr"
BUILD_DCR = "reconciliation.build_dcr"
SUBMIT_DBS = "reconciliation.submit_dbs"
APPROVE_DBS = "reconciliation.approve_dbs"
ADD_DEPOSIT = "reconciliation.add_deposit"
CHANGE_DEPOSIT = "reconciliation.change_deposit"
DELETE_DEPOSIT = "reconciliation.delete_deposit"
ADD_STATEMENT = "reconciliation.add_statementupload"

# a RUNNING job silent this long is taken over
JOB_LEASE = datetime.timedelta(seconds=settings.RECONCILIATION_JOB_LEASE_SECONDS)
KEY_LENGTH = DcrLine._meta.get_field("key").max_length
SLIP_SCAN_MAX_BYTES = 5 * 1024 * 1024
SLIP_SCAN_TYPES = {  # extension: the file's first bytes
    ".pdf": (b"%PDF-",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".png": (b"\x89PNG\r\n\x1a\n",),
}
STATEMENT_MAX_BYTES = 20 * 1024 * 1024


# --- Building DCRs --------------------------------------------------------------------


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


@dataclass(frozen=True)
class DcrRef:
    """What a DBS needs of its DCR (never the DCR's long id lists)."""

    pk: int
    status: str
    cash_amount: Decimal


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


def _dcr_apply(dcr: Dcr, branch: Branch, figures: DayFigures, totals: dict) -> None:
    by_mode, excluded = totals["MODE"], totals["EXCLUDED"]
    dcr.collected_count = sum(count for count, _ in by_mode.values())
    dcr.collected_amount = from_paise(sum(paise for _, paise in by_mode.values()))
    dcr.cash_amount = from_paise(by_mode.get("CASH", (0, 0))[1])
    dcr.excluded_count = sum(count for count, _ in excluded.values())
    dcr.excluded_amount = from_paise(sum(paise for _, paise in excluded.values()))
    dcr.txn_ids = figures.collected_ids()
    dcr.excluded_txn_ids = figures.excluded_ids()
    dcr.is_provisional = not _is_closed(branch, figures.business_date, figures.read_started_at)
    dcr.read_started_at = figures.read_started_at
    dcr.computed_at = timezone.now()


def _line_rows(totals: dict[str, dict[str, list[int]]]) -> list[tuple[str, str, int, Decimal]]:
    """(dimension, key, count, amount) of every line; keys cut to the column's length
    (merged if two collectors differ only beyond it)."""
    lines: dict[tuple[str, str], list[int]] = {}
    for dimension, buckets in totals.items():
        for key, (count, paise) in buckets.items():
            merged = lines.setdefault((dimension, (key or "")[:KEY_LENGTH]), [0, 0])
            merged[0] += count
            merged[1] += paise
    return [(d, k, c, from_paise(p)) for (d, k), (c, p) in sorted(lines.items())]


def _dcr_lines_write(dcr: Dcr, totals: dict[str, dict[str, list[int]]]) -> None:
    DcrLine.objects.filter(dcr=dcr).delete()
    DcrLine.objects.bulk_create(
        DcrLine(dcr=dcr, dimension=d, key=k, count=c, amount=a) for d, k, c, a in _line_rows(totals)
    )
    _late_arrivals_resolve(dcr.pk)


def _late_arrivals_resolve(dcr_id: int) -> None:
    """A rebuilt (returned, or resubmitted) DCR includes what had arrived late."""
    LateArrival.objects.filter(dcr_id=dcr_id, resolved_at__isnull=True).update(
        resolved_at=timezone.now()
    )


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


def _is_closed(
    branch: Branch, business_date: datetime.date, now: datetime.datetime | None = None
) -> bool:
    """A business date is closed once the branch's cut-off on that date has passed."""
    return business_date < business_date_for(branch, now or timezone.now())


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


# --- The daily job and the 15-minute tick ----------------------------------------------


class JobClaimLost(Exception):
    """Another run took the job over (this one was silent past the lease)."""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def job_claim(
    *, job: str, business_date: datetime.date, owner: str, branches_total: int = 0
) -> JobRun | None:
    """Claim the (job, business date) row, or return None when it is done or another run
    holds it. A FAILED run, or a RUNNING one silent for ``JOB_LEASE``, is taken over."""
    now = timezone.now()
    try:
        with transaction.atomic():
            return JobRun.objects.create(
                job=job,
                business_date=business_date,
                owner=owner,
                branches_total=branches_total,
                started_at=now,
                heartbeat_at=now,
            )
    except IntegrityError:
        pass
    taken = (
        JobRun.objects.filter(job=job, business_date=business_date)
        .filter(
            Q(state=JobRun.State.FAILED)
            | Q(state=JobRun.State.RUNNING, heartbeat_at__lt=now - JOB_LEASE)
        )
        .update(
            state=JobRun.State.RUNNING,
            owner=owner,
            attempts=F("attempts") + 1,
            branches_total=branches_total,
            branches_done=0,
            started_at=now,
            heartbeat_at=now,
            finished_at=None,
            error="",
        )
    )
    return JobRun.objects.get(job=job, business_date=business_date) if taken else None


def dcr_daily_run(
    *, job: str, business_date: datetime.date, branch_ids: list[int], owner: str | None = None
) -> str:
    """The guarded daily build of a closed business date: ``"done"``, ``"failed"`` (some
    branches could not be written; the next tick resumes) or ``"skipped"`` (done already,
    or another run is at it)."""
    owner = owner or _owner()
    run = job_claim(
        job=job, business_date=business_date, owner=owner, branches_total=len(branch_ids)
    )
    if run is None:
        return "skipped"

    def heartbeat(branch_id: int, day: datetime.date) -> None:
        beat = JobRun.objects.filter(pk=run.pk, owner=owner).update(
            heartbeat_at=timezone.now(), branches_done=F("branches_done") + 1
        )
        if not beat:
            raise JobClaimLost(f"{job} {business_date}: taken over by another run")

    try:
        report = dcr_build_many(
            pairs=[(branch_id, business_date) for branch_id in branch_ids], on_done=heartbeat
        )
    except BaseException as exc:
        _job_finish(run, owner, failed=True, error=f"{type(exc).__name__}: {exc}")
        raise
    if report.failed:
        error = "; ".join(
            f"branch {b}: {str(e).splitlines()[0]}" for (b, _), e in report.failed.items()
        )
        _job_finish(run, owner, failed=True, error=error)
        return "failed"
    _job_finish(run, owner, failed=False)
    return "done"


def _job_finish(run: JobRun, owner: str, *, failed: bool, error: str = "") -> None:
    JobRun.objects.filter(pk=run.pk, owner=owner).update(
        state=JobRun.State.FAILED if failed else JobRun.State.DONE,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
        error=error[:5000],
    )


def reconciliation_tick(*, now: datetime.datetime | None = None) -> dict[str, object]:
    """What beat runs every 15 minutes:

    1. the intraday roll-up: a provisional DCR of each branch's open business date;
    2. the daily build of each branch's latest closed business date, once per cut-off
       time and date (guarded by ``JobRun``; a failed run resumes on the next tick);
    3. late arrivals: submitted and approved DCRs of the back-dating window are read
       again, and what they do not count is recorded for the approver.
    """
    now = now or timezone.now()
    branches = list(Branch.objects.filter(is_active=True).only("pk", "code", "cutoff_time"))
    summary: dict[str, object] = {}
    intraday = dcr_build_many(
        pairs=[(b.pk, business_date_for(b, now)) for b in branches], with_dbs=False
    )
    summary["intraday"] = intraday.written

    groups: dict[datetime.time, list[Branch]] = defaultdict(list)
    for branch in branches:
        groups[branch.cutoff_time].append(branch)
    daily = {}
    for cutoff, members in sorted(groups.items()):
        closed = business_date_for(members[0], now) - datetime.timedelta(days=1)
        job = f"dcr_daily@{cutoff:%H%M}"
        daily[f"{job} {closed}"] = dcr_daily_run(
            job=job, business_date=closed, branch_ids=[b.pk for b in members]
        )
    summary["daily"] = daily

    window = timezone.localdate(now) - datetime.timedelta(days=settings.PAYMENTS_BACKDATE_DAYS + 1)
    frozen = Dcr.objects.filter(
        status__in=FROZEN, business_date__gte=window, branch__is_active=True
    ).values_list("branch_id", "business_date")
    summary["late_arrivals"] = dcr_build_many(pairs=list(frozen)).late_arrivals
    return summary


# --- The workflow (DCR and DBS) ------------------------------------------------------


def _locked(model: type[Dcr] | type[Dbs], pk: int, actor) -> Dcr | Dbs:
    queryset = model.objects.select_for_update(of=("self",)).select_related("branch")
    obj = scope_queryset(queryset, actor).filter(pk=pk).first()
    if obj is None:
        raise ReportNotFound(f"No {model._meta.verbose_name} {pk} that you may see.")
    return obj


def _ensure_closed(obj: Dcr | Dbs) -> None:
    if not _is_closed(obj.branch, obj.business_date):
        raise BusinessDateOpen(
            f"The business date {obj.business_date:%d %b %Y} of {obj.branch.code} has not "
            f"closed yet (cut-off {obj.branch.cutoff_time:%H:%M}); submit it after the cut-off."
        )


def _remarks_required(remarks: str) -> str:
    remarks = (remarks or "").strip()
    if not remarks:
        raise NotAllowed("Say why you return it.", code="remarks_required", status=400)
    return remarks


def _reopen_if_returned(obj: Dcr | Dbs, actor) -> None:
    if obj.status == Status.RETURNED:
        transition(obj, Status.DRAFT, actor=actor, remarks="reopened to resubmit")


def _decision_check(obj: Dcr | Dbs, actor, target: str) -> None:
    """Decided already (one of two concurrent checkers): the loser learns who won.
    Then the one four-eyes rule: not the submitter, nor (a DBS) anyone who recorded,
    changed or deleted one of its deposits since its last decision."""
    if obj.status in (Status.APPROVED, Status.RETURNED):
        who = obj.decided_by.get_username() if obj.decided_by else "someone"
        raise AlreadyDecided(f"{obj} was already {obj.status.lower()} by {who}.")
    if obj.status != Status.SUBMITTED:
        transition(obj, target, actor=actor)  # raises InvalidTransition
    subject_decide(
        subject=subject_of(obj),
        actor=actor,
        makers=[obj.submitted_by_id],
        what=f"this {obj._meta.verbose_name}",
    )


def _contributed(obj: Dcr | Dbs, actor, kind: str) -> None:
    """``actor`` changed what ``obj`` (locked by the caller) holds: they may not decide it."""
    subject_contribution_record(subject=subject_of(obj), actor=actor, kind=kind)


@transaction.atomic
def dcr_submit(*, dcr_id: int, actor) -> Dcr:
    """The branch manager submits a closed date's DCR. Its figures are read again from
    DynamoDB under the lock, so the submitted figures are exactly what is there now."""
    require_permission(actor, SUBMIT_DCR, "You may not submit a DCR.")
    dcr = _locked(Dcr, dcr_id, actor)
    if dcr.status not in (Status.DRAFT, Status.RETURNED):
        transition(dcr, Status.SUBMITTED, actor=actor)  # raises
    _ensure_closed(dcr)
    figures = branch_day_figures(branch_id=dcr.branch_id, business_date=dcr.business_date)
    _reopen_if_returned(dcr, actor)
    totals = figures.totals()
    _dcr_apply(dcr, dcr.branch, figures, totals)
    _dcr_lines_write(dcr, totals)
    transition(dcr, Status.SUBMITTED, actor=actor)
    _contributed(dcr, actor, SubjectContribution.Kind.SUBMITTED)
    dbs_refresh(branch_id=dcr.branch_id, business_date=dcr.business_date)
    return dcr


@transaction.atomic
def dcr_approve(*, dcr_id: int, actor, remarks: str = "") -> Dcr:
    require_permission(actor, APPROVE_DCR, "You may not approve DCRs.")
    dcr = _locked(Dcr, dcr_id, actor)
    _decision_check(dcr, actor, Status.APPROVED)
    transition(dcr, Status.APPROVED, actor=actor, remarks=(remarks or "").strip())
    dbs_refresh(branch_id=dcr.branch_id, business_date=dcr.business_date)  # its DCR flag
    return dcr


@transaction.atomic
def dcr_return(*, dcr_id: int, actor, remarks: str) -> Dcr:
    require_permission(actor, APPROVE_DCR, "You may not return DCRs.")
    remarks = _remarks_required(remarks)
    dcr = _locked(Dcr, dcr_id, actor)
    _decision_check(dcr, actor, Status.RETURNED)
    transition(dcr, Status.RETURNED, actor=actor, remarks=remarks)
    return dcr


@transaction.atomic
def dbs_submit(*, dbs_id: int, actor) -> Dbs:
    require_permission(actor, SUBMIT_DBS, "You may not submit a DBS.")
    dbs = _locked(Dbs, dbs_id, actor)
    if dbs.status not in (Status.DRAFT, Status.RETURNED):
        transition(dbs, Status.SUBMITTED, actor=actor)  # raises
    _ensure_closed(dbs)
    _reopen_if_returned(dbs, actor)
    _dbs_compute(dbs)
    transition(dbs, Status.SUBMITTED, actor=actor)
    _contributed(dbs, actor, SubjectContribution.Kind.SUBMITTED)
    return dbs


@transaction.atomic
def dbs_approve(*, dbs_id: int, actor, remarks: str = "") -> Dbs:
    require_permission(actor, APPROVE_DBS, "You may not approve a DBS.")
    dbs = _locked(Dbs, dbs_id, actor)
    _decision_check(dbs, actor, Status.APPROVED)
    transition(dbs, Status.APPROVED, actor=actor, remarks=(remarks or "").strip())
    return dbs


@transaction.atomic
def dbs_return(*, dbs_id: int, actor, remarks: str) -> Dbs:
    require_permission(actor, APPROVE_DBS, "You may not return a DBS.")
    remarks = _remarks_required(remarks)
    dbs = _locked(Dbs, dbs_id, actor)
    _decision_check(dbs, actor, Status.RETURNED)
    transition(dbs, Status.RETURNED, actor=actor, remarks=remarks)
    return dbs


# --- The DBS figures --------------------------------------------------------------------


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
                "message": f"Closing cash in hand ₹{dbs.closing_cash:,} is above the branch "
                f"limit of ₹{dbs.cash_limit:,}.",
            }
        )
    if dbs.closing_cash < 0:
        flags.append(
            {
                "code": "CASH_NEGATIVE",
                "message": f"More was deposited than was in hand: closing ₹{dbs.closing_cash:,}.",
            }
        )
    without_slip = [d for d in deposits if not d.slip_number]
    if without_slip:
        flags.append(
            {
                "code": "DEPOSIT_WITHOUT_SLIP",
                "message": f"{len(without_slip)} deposit(s) without a slip number: "
                + ", ".join(f"₹{d.amount:,}" for d in without_slip),
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


# --- Deposits -----------------------------------------------------------------------


def deposit_problems(
    *,
    branch_id: int | None,
    deposit_date: datetime.date | None,
    collection_account: CollectionAccount | None,
    slip_number: str,
    amount: Decimal | None,
    slip_scan=None,
    exclude_pk: int | None = None,
) -> dict[str, str]:
    """What is wrong with a deposit, by field (empty when nothing is). The admin's form
    shows these; ``deposit_record`` refuses with them."""
    problems: dict[str, str] = {}
    if amount is None or amount <= 0:
        problems["amount"] = "The amount must be more than zero."
    today = timezone.localdate()
    if deposit_date is not None and deposit_date > today:
        problems["deposit_date"] = "The deposit date cannot be in the future."
    if collection_account is not None and not collection_account.is_active:
        problems["collection_account"] = "This collection account is not active."
    slip_number = (slip_number or "").strip()
    if slip_number and branch_id:
        earlier = (
            Deposit.objects.filter(branch_id=branch_id, slip_number=slip_number)
            .exclude(pk=exclude_pk)
            .first()
        )
        if earlier is not None:
            problems["slip_number"] = (
                f"Slip number {slip_number} is already used (deposit of "
                f"₹{earlier.amount:,} on {earlier.deposit_date:%d %b %Y})."
            )
    if branch_id and deposit_date is not None and "deposit_date" not in problems:
        status = (
            Dbs.objects.filter(branch_id=branch_id, business_date=deposit_date)
            .values_list("status", flat=True)
            .first()
        )
        if status in FROZEN:
            problems["deposit_date"] = (
                f"The DBS of {deposit_date:%d %b %Y} is {Status(status).label.lower()}: its "
                "deposits cannot change."
            )
    scan_problem = slip_scan_problem(slip_scan)
    if scan_problem:
        problems["slip_scan"] = scan_problem
    return problems


def slip_scan_problem(upload) -> str | None:
    if not upload:
        return None
    if getattr(upload, "_committed", False) and not hasattr(upload, "content_type"):
        return None  # the file already stored with the deposit
    if upload.size > SLIP_SCAN_MAX_BYTES:
        return f"The scan is {upload.size / 1024 / 1024:.1f} MB: at most 5 MB."
    name = upload.name or ""
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    magic = SLIP_SCAN_TYPES.get(suffix)
    if magic is None:
        return "The scan must be a PDF, JPEG or PNG file."
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if not any(head.startswith(m) for m in magic):
        return f"The file is not a real {suffix[1:].upper()} (its content does not match)."
    return None


def _deposit_refuse(problems: dict[str, str]) -> None:
    if problems:
        field_name = next(iter(problems))
        error = DepositRejected(" ".join(problems.values()), field=field_name)
        error.problems = problems
        raise error


@transaction.atomic
def deposit_record(
    *,
    actor,
    branch_id: int,
    deposit_date: datetime.date,
    collection_account_id: int,
    amount: Decimal,
    slip_number: str = "",
    slip_scan=None,
) -> Deposit:
    """Branch staff record a deposit of collected cash; the DBS of its date follows."""
    require_permission(actor, ADD_DEPOSIT, "You may not record deposits.")
    if not can_see_branch(actor, branch_id):
        raise NotAllowed("You may record deposits of your own branch only.")
    account = CollectionAccount.objects.filter(pk=collection_account_id).first()
    if account is None:
        raise DepositRejected("No such collection account.", field="collection_account")
    dbs = _dbs_locked(branch_id, deposit_date)  # a concurrent DBS submission waits for us
    slip_number = (slip_number or "").strip()
    _deposit_refuse(
        deposit_problems(
            branch_id=branch_id,
            deposit_date=deposit_date,
            collection_account=account,
            slip_number=slip_number,
            amount=amount,
            slip_scan=slip_scan,
        )
    )
    try:
        with transaction.atomic():
            deposit = Deposit.objects.create(
                branch_id=branch_id,
                deposit_date=deposit_date,
                collection_account=account,
                slip_number=slip_number,
                amount=amount,
                slip_scan=slip_scan or "",
                recorded_by=actor,
            )
    except IntegrityError:
        raise DepositRejected(
            f"Slip number {slip_number} is already used.", field="slip_number"
        ) from None
    _contributed(dbs, actor, SubjectContribution.Kind.CHANGED)
    dbs_refresh(branch_id=branch_id, business_date=deposit_date)
    _slip_twins_refresh(deposit)
    return deposit


def _slip_twins_refresh(deposit: Deposit) -> None:
    """Another branch's deposit into the same account with the same slip: its DBS gets
    the SLIP_USED_TWICE flag too."""
    if not deposit.slip_number:
        return
    twins = (
        Deposit.objects.filter(
            collection_account_id=deposit.collection_account_id, slip_number=deposit.slip_number
        )
        .exclude(pk=deposit.pk)
        .values_list("branch_id", "deposit_date")
        .distinct()
    )
    for branch_id, day in twins:
        dbs_refresh(branch_id=branch_id, business_date=day)


@transaction.atomic
def deposit_update(*, deposit_id: int, actor, **changes) -> Deposit:
    """Correct a deposit while the DBS of its date (old and new) is open."""
    require_permission(actor, CHANGE_DEPOSIT, "You may not change deposits.")
    deposit = (
        scope_queryset(Deposit.objects.select_for_update(), actor).filter(pk=deposit_id).first()
    )
    if deposit is None:
        raise ReportNotFound(f"No deposit {deposit_id} that you may see.")
    old_date = deposit.deposit_date
    old_dbs = _dbs_locked(deposit.branch_id, old_date)
    if Dbs.objects.filter(
        branch_id=deposit.branch_id, business_date=old_date, status__in=FROZEN
    ).exists():
        raise DepositRejected(
            f"The DBS of {old_date:%d %b %Y} is submitted: its deposits cannot change.",
            field="deposit_date",
        )
    for name in ("deposit_date", "collection_account_id", "slip_number", "amount", "slip_scan"):
        if name in changes:
            setattr(deposit, name, changes[name])
    deposit.slip_number = (deposit.slip_number or "").strip()
    new_dbs = _dbs_locked(deposit.branch_id, deposit.deposit_date)
    _deposit_refuse(
        deposit_problems(
            branch_id=deposit.branch_id,
            deposit_date=deposit.deposit_date,
            collection_account=CollectionAccount.objects.get(pk=deposit.collection_account_id),
            slip_number=deposit.slip_number,
            amount=deposit.amount,
            slip_scan=changes.get("slip_scan"),
            exclude_pk=deposit.pk,
        )
    )
    deposit.save()
    for dbs in {old_dbs.pk: old_dbs, new_dbs.pk: new_dbs}.values():
        _contributed(dbs, actor, SubjectContribution.Kind.CHANGED)
    for day in {old_date, deposit.deposit_date}:
        dbs_refresh(branch_id=deposit.branch_id, business_date=day)
    return deposit


@transaction.atomic
def deposit_delete(*, deposit_id: int, actor) -> None:
    require_permission(actor, DELETE_DEPOSIT, "You may not delete deposits.")
    deposit = (
        scope_queryset(Deposit.objects.select_for_update(), actor).filter(pk=deposit_id).first()
    )
    if deposit is None:
        raise ReportNotFound(f"No deposit {deposit_id} that you may see.")
    dbs = _dbs_locked(deposit.branch_id, deposit.deposit_date)
    if dbs.status in FROZEN:
        raise DepositRejected(
            f"The DBS of {deposit.deposit_date:%d %b %Y} is submitted: its deposits cannot change."
        )
    deposit.delete()
    _contributed(dbs, actor, SubjectContribution.Kind.CHANGED)
    dbs_refresh(branch_id=dbs.branch_id, business_date=dbs.business_date)


# --- Bank statements --------------------------------------------------------------------


@transaction.atomic
def statement_upload(*, collection_account_id: int, file, actor) -> StatementUpload:
    """Import a statement CSV whole, or refuse it whole (``StatementRejected`` with every
    bad line), then match its credits to deposits."""
    require_permission(actor, ADD_STATEMENT, "You may not upload bank statements.")
    account = CollectionAccount.objects.filter(pk=collection_account_id).first()
    if account is None:
        raise StatementRejected("No such collection account.", errors=[])
    if file.size > STATEMENT_MAX_BYTES:
        raise StatementRejected(
            "The file is larger than 20 MB.", errors=[(1, "The file is larger than 20 MB.")]
        )
    data = file.read()
    digest = hashlib.sha256(data).hexdigest()
    _refuse_imported_before(account, digest)
    lines, errors = statement_parse(data)
    if errors:
        raise StatementRejected(
            f"The statement has {len(errors)} problem(s); nothing was imported.", errors=errors
        )
    name = (getattr(file, "name", "") or "").replace("\x00", "") or "statement.csv"
    try:
        with transaction.atomic():  # the unique constraint decides between concurrent uploads
            upload = StatementUpload.objects.create(
                collection_account=account,
                file_name=name[:200],
                content_sha256=digest,
                line_count=len(lines),
                first_date=min(line.txn_date for line in lines),
                last_date=max(line.txn_date for line in lines),
                uploaded_by=actor,
            )
    except IntegrityError:
        _refuse_imported_before(account, digest)
        raise
    StatementLine.objects.bulk_create(
        StatementLine(
            upload=upload,
            line_number=line.line_number,
            txn_date=line.txn_date,
            narration=line.narration,
            reference=line.reference,
            credit=line.credit,
        )
        for line in lines
    )
    statement_match(upload=upload)
    return upload


def _refuse_imported_before(account: CollectionAccount, digest: str) -> None:
    earlier = (
        StatementUpload.objects.filter(collection_account=account, content_sha256=digest)
        .select_related("uploaded_by")
        .first()
    )
    if earlier is not None:
        who = earlier.uploaded_by.get_username() if earlier.uploaded_by else "someone"
        raise StatementAlreadyImported(
            f"This file was already imported for {account}: {earlier.file_name}, "
            f"uploaded by {who} on {timezone.localtime(earlier.uploaded_at):%d %b %Y %H:%M} "
            f"(statement #{earlier.pk}, {earlier.line_count} line(s)).",
            field="file",
        )


def statement_match(*, upload: StatementUpload) -> int:
    """Match the upload's unmatched lines to deposits of the same account not matched yet,
    by slip number and amount. Returns how many lines were matched."""
    lines = list(upload.lines.filter(matched_deposit__isnull=True).exclude(reference=""))
    if not lines:
        return 0
    candidates: dict[tuple[str, Decimal], list[Deposit]] = defaultdict(list)
    for deposit in Deposit.objects.filter(
        collection_account_id=upload.collection_account_id,
        slip_number__in={line.reference for line in lines},
        statement_line__isnull=True,
    ).order_by("deposit_date", "id"):
        candidates[(deposit.slip_number, deposit.amount)].append(deposit)
    matched = []
    for line in lines:
        pool = candidates.get((line.reference, line.credit))
        if pool:
            line.matched_deposit = pool.pop(0)
            matched.append(line)
    StatementLine.objects.bulk_update(matched, ["matched_deposit"])
    return len(matched)
