"""Reads of reconciliation: a branch-day's transactions from DynamoDB (the ``branch_day``
index, never a Scan), and the scoped lists behind the admin, the workflow screens, the
approvals inbox, the dashboard and the exports."""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from django.db.models import Count, Q, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone

from accounts.models import Branch
from accounts.scoping import head_office_only, scope_queryset
from approvals.selectors import InboxEntry, ReturnedEntry, without_undecidable
from core.templatetags.formats import day, inr, person
from dynamo.errors import is_unavailable
from dynamo.query import query_partition
from ops.db import reporting, reporting_alias
from payments.ddb_models import TransactionItem, branch_day_key
from payments.services import MODES

from .exceptions import StoreUnavailable
from .models import Dbs, Dcr, DcrLine, Deposit, StatementUpload, Status

COLLECTED = frozenset({"RECEIVED", "POSTED"})  # count as collected
NOT_COLLECTED = frozenset({"FAILED", "REVERSED"})  # listed separately
# Only what the figures need: less to send, less to deserialize per item.
READ_ATTRIBUTES = ["txn_id", "amount_paise", "mode", "status", "collector"]
READ_WORKERS = 8
INBOX_LIMIT = 200

APPROVE_DCR = "reconciliation.approve_dcr"
APPROVE_DBS = "reconciliation.approve_dbs"


# --- DynamoDB: one branch-day's figures ----------------------------------------------


@dataclass
class DayFigures:
    """A branch-day's transactions as read: ``txns`` maps txn_id to
    ``(mode, status, collector, paise)``; the totals are derived from it."""

    branch_id: int
    business_date: datetime.date
    read_started_at: datetime.datetime
    txns: dict[str, tuple[str, str, str, int]] = field(default_factory=dict)

    def totals(self) -> dict[str, dict[str, list[int]]]:
        """``{"MODE": {mode: [count, paise]}, "COLLECTOR": {...}, "EXCLUDED": {status: ...}}``"""
        by_mode: dict[str, list[int]] = {}
        by_collector: dict[str, list[int]] = {}
        excluded: dict[str, list[int]] = {}
        for mode, status, collector, paise in self.txns.values():
            if status in COLLECTED:
                for bucket, key in ((by_mode, mode), (by_collector, collector)):
                    pair = bucket.get(key)
                    if pair is None:
                        bucket[key] = [1, paise]
                    else:
                        pair[0] += 1
                        pair[1] += paise
            else:
                pair = excluded.setdefault(status, [0, 0])
                pair[0] += 1
                pair[1] += paise
        return {"MODE": by_mode, "COLLECTOR": by_collector, "EXCLUDED": excluded}

    def collected_ids(self) -> list[str]:
        return sorted(t for t, v in self.txns.items() if v[1] in COLLECTED)

    def excluded_ids(self) -> list[str]:
        return sorted(t for t, v in self.txns.items() if v[1] not in COLLECTED)


def txn_figures(raw: dict) -> tuple[str, str, str, int]:
    """``(mode, status, collector, paise)`` of a transaction item as DynamoDB sends it
    (``{"mode": {"S": "CASH"}, ...}``: a Query's items, a stream record's image)."""
    collector = raw.get("collector")
    return (
        raw["mode"]["S"],
        raw["status"]["S"],
        collector["S"] if collector and "S" in collector else "",
        int(raw["amount_paise"]["N"]),
    )


def branch_day_figures(*, branch_id: int, business_date: datetime.date) -> DayFigures:
    """Every transaction of one branch and business date, by a paginated Query of the
    ``branch_day`` index. Amounts stay integer paise here."""
    figures = DayFigures(branch_id, business_date, timezone.now())
    txns = figures.txns
    items = query_partition(
        table=TransactionItem.Meta.table_name,
        index=TransactionItem.by_branch_day.Meta.index_name,
        key_name="branch_day",
        key_value=branch_day_key(branch_id, business_date),
        attributes=READ_ATTRIBUTES,
    )
    try:
        # Items as DynamoDB sends them (dynamo.query): building a model instance, or
        # botocore's check of every attribute, per item costs more than the rest together.
        for raw in items:
            txns[raw["txn_id"]["S"]] = txn_figures(raw)
    except (BotoCoreError, ClientError) as exc:
        if is_unavailable(exc):
            raise StoreUnavailable("The transactions store is unavailable; retry shortly.") from exc
        raise
    return figures


def branch_days_figures(
    pairs: Iterable[tuple[int, datetime.date]], *, workers: int = READ_WORKERS
) -> Iterator[tuple[tuple[int, datetime.date], DayFigures | BaseException]]:
    """Read many branch-days at once (a thread pool; each thread runs its own queries and
    touches no database), yielding ``((branch_id, date), figures or the exception)`` as
    each read completes."""
    pairs = list(pairs)
    if not pairs:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(pairs)))) as pool:
        futures = {
            pool.submit(branch_day_figures, branch_id=b, business_date=d): (b, d) for b, d in pairs
        }
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except Exception as exc:  # reported per branch-day by the caller
                yield futures[future], exc


# --- Postgres lists (scoped) -----------------------------------------------------------


def dcrs_visible(*, user) -> QuerySet[Dcr]:
    return scope_queryset(Dcr.objects.all(), user)


def dbss_visible(*, user) -> QuerySet[Dbs]:
    return scope_queryset(Dbs.objects.all(), user)


def deposits_visible(*, user) -> QuerySet[Deposit]:
    return scope_queryset(Deposit.objects.all(), user)


def branches_visible(*, user) -> QuerySet[Branch]:
    return scope_queryset(Branch.objects.all(), user).order_by("code")


def statement_uploads_visible(*, user) -> QuerySet[StatementUpload]:
    return head_office_only(StatementUpload.objects.all(), user)


def dcr_for_user(*, pk: int, user) -> Dcr | None:
    return (
        dcrs_visible(user=user)
        .select_related("branch", "submitted_by", "decided_by")
        .filter(pk=pk)
        .first()
    )


def dbs_for_user(*, pk: int, user) -> Dbs | None:
    return (
        dbss_visible(user=user)
        .select_related("branch", "submitted_by", "decided_by", "dcr")
        .filter(pk=pk)
        .first()
    )


def dcr_lines(dcr: Dcr) -> dict[str, list[DcrLine]]:
    lines: dict[str, list[DcrLine]] = {d: [] for d in DcrLine.Dimension.values}
    for line in dcr.lines.all():
        lines[line.dimension].append(line)
    return lines


def dcr_receipts(*, dcr: Dcr, user, cursor: str | None = None, limit: int = 100):
    """The drill-down: every transaction of the DCR's branch-day, from DynamoDB (newest
    first, pages of ``limit`` with a signed cursor). Each row says whether the DCR counts
    it (``in_dcr``) or it arrived after submission (``late``)."""
    from payments.selectors import transactions_for_branch_day

    page = transactions_for_branch_day(
        branch_id=dcr.branch_id, business_date=dcr.business_date, user=user, limit=limit,
        cursor=cursor,
    )  # fmt: skip
    counted, excluded = set(dcr.txn_ids), set(dcr.excluded_txn_ids)
    for row in page.rows:
        row["in_dcr"] = row["txn_id"] in counted or row["txn_id"] in excluded
        row["counted"] = row["txn_id"] in counted
    return page


def deposits_with_match(dbs: Dbs) -> list[Deposit]:
    return list(
        Deposit.objects.filter(branch_id=dbs.branch_id, deposit_date=dbs.business_date)
        .select_related("collection_account__partner", "recorded_by", "statement_line__upload")
        .order_by("id")
    )


# --- The approvals inbox ---------------------------------------------------------------


def dcrs_waiting_for(*, user) -> QuerySet[Dcr]:
    """Submitted DCRs in the user's scope that they may approve: not those they submitted
    (nor, under the four-eyes rule, changed since the last decision)."""
    if not user.has_perm(APPROVE_DCR):
        return Dcr.objects.none()
    submitted = dcrs_visible(user=user).filter(status=Status.SUBMITTED).exclude(submitted_by=user)
    return without_undecidable(submitted, user)


def dbss_waiting_for(*, user) -> QuerySet[Dbs]:
    """Submitted DBSs the user may approve: not those they submitted, nor those whose
    deposits they recorded, changed or deleted since the last decision."""
    if not user.has_perm(APPROVE_DBS):
        return Dbs.objects.none()
    submitted = dbss_visible(user=user).filter(status=Status.SUBMITTED).exclude(submitted_by=user)
    return without_undecidable(submitted, user)


DEFERRED = {Dcr: ("txn_ids", "excluded_txn_ids")}  # long lists a list never shows


def _entries(queryset: QuerySet, label: str, url_name: str, source: str) -> list[InboxEntry]:
    rows = (
        queryset.select_related("branch", "submitted_by")
        .defer(*DEFERRED.get(queryset.model, ()))
        .order_by("submitted_at")
    )
    return [
        InboxEntry(
            kind_label=label,
            subject=f"{label} {obj.branch.code} {obj.business_date:%d %b %Y}",
            branch=str(obj.branch),
            maker=person(obj.submitted_by) if obj.submitted_by else "—",
            submitted_at=obj.submitted_at or obj.computed_at or timezone.now(),
            url=reverse(url_name, args=[obj.pk]),
            source=source,
        )
        for obj in rows[:INBOX_LIMIT]
    ]


def dcr_inbox_entries(user) -> list[InboxEntry]:
    return _entries(dcrs_waiting_for(user=user), "DCR", "reconciliation:dcr", "dcr")


def dbs_inbox_entries(user) -> list[InboxEntry]:
    return _entries(dbss_waiting_for(user=user), "DBS", "reconciliation:dbs", "dbs")


def dcr_inbox_count(user) -> int:
    return dcrs_waiting_for(user=user).count()


def dbs_inbox_count(user) -> int:
    return dbss_waiting_for(user=user).count()


def _returned(queryset: QuerySet, label: str, url_name: str) -> list[ReturnedEntry]:
    rows = (
        queryset.filter(status=Status.RETURNED)
        .select_related("branch", "decided_by")
        .defer(*DEFERRED.get(queryset.model, ()))
        .order_by("-decided_at")
    )
    return [
        ReturnedEntry(
            kind_label=label,
            subject=f"{label} {obj.branch.name} {day(obj.business_date)}",
            branch=obj.branch.name,
            returned_by=person(obj.decided_by) if obj.decided_by else "—",
            returned_at=obj.decided_at or obj.computed_at or timezone.now(),
            remarks=obj.remarks,
            url=reverse(url_name, args=[obj.pk]),
        )
        for obj in rows[:INBOX_LIMIT]
    ]


def returned_to(user) -> list[ReturnedEntry]:
    """The DCRs and DBSs the user submitted that a checker returned (still RETURNED: the
    user fixes the day and submits it again from its page)."""
    return [
        *_returned(dcrs_visible(user=user).filter(submitted_by=user), "DCR", "reconciliation:dcr"),
        *_returned(dbss_visible(user=user).filter(submitted_by=user), "DBS", "reconciliation:dbs"),
    ]


# --- Exports -------------------------------------------------------------------------


def dcr_export_rows(queryset: QuerySet[Dcr]) -> Iterator[list[Any]]:
    """The header, then one row per DCR (one query: totals by mode pivoted in SQL), read
    from the reporting database (the replica when there is one)."""
    mode_sums = {
        f"mode_{mode}": Sum("lines__amount", filter=Q(lines__dimension="MODE", lines__key=mode))
        for mode in MODES
    }
    rows = (
        queryset.using(reporting_alias())
        .select_related("branch", "submitted_by", "decided_by")
        .defer("txn_ids", "excluded_txn_ids")
        .annotate(**mode_sums, late_count=Count("late_arrivals", distinct=True))
        .order_by("-business_date", "branch__code")
    )
    yield [
        "Branch", "Branch name", "Business date", "Status", "Provisional", "Receipts",
        "Collected", *MODES, "Not collected (count)", "Not collected", "Late arrivals",
        "Submitted by", "Submitted at", "Decided by", "Decided at", "Remarks",
    ]  # fmt: skip
    for dcr in rows:
        yield [
            dcr.branch.code,
            dcr.branch.name,
            dcr.business_date,
            dcr.get_status_display(),
            "yes" if dcr.is_provisional else "no",
            dcr.collected_count,
            dcr.collected_amount,
            *(getattr(dcr, f"mode_{mode}") or Decimal("0.00") for mode in MODES),
            dcr.excluded_count,
            dcr.excluded_amount,
            dcr.late_count,
            _username(dcr.submitted_by),
            _local(dcr.submitted_at),
            _username(dcr.decided_by),
            _local(dcr.decided_at),
            dcr.remarks,
        ]


def dbs_export_rows(queryset: QuerySet[Dbs]) -> Iterator[list[Any]]:
    rows = (
        queryset.using(reporting_alias())
        .select_related("branch", "submitted_by", "decided_by")
        .order_by("-business_date", "branch__code")
    )
    yield [
        "Branch", "Branch name", "Business date", "Status", "Opening cash", "Cash collected",
        "Deposits", "Deposit count", "Closing cash", "Cash limit", "Flags",
        "Submitted by", "Submitted at", "Decided by", "Decided at", "Remarks",
    ]  # fmt: skip
    for dbs in rows:
        yield [
            dbs.branch.code,
            dbs.branch.name,
            dbs.business_date,
            dbs.get_status_display(),
            dbs.opening_cash,
            dbs.cash_collected,
            dbs.deposits_total,
            dbs.deposit_count,
            dbs.closing_cash,
            dbs.cash_limit,
            ", ".join(dbs.flag_codes),
            _username(dbs.submitted_by),
            _local(dbs.submitted_at),
            _username(dbs.decided_by),
            _local(dbs.decided_at),
            dbs.remarks,
        ]


def _username(user) -> str:
    return user.get_username() if user else ""


def _local(moment: datetime.datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M") if moment else ""


# --- The dashboard ---------------------------------------------------------------------


def _money(value: Decimal | None) -> str:
    """Chart data carries money as strings with two decimals, never floats."""
    return f"{(value or Decimal('0.00')):.2f}"


@reporting()
def dashboard_data(*, user, today: datetime.date, days: int = 30) -> dict[str, Any]:
    """Chart series for the user's scope: collections per day by mode (``days`` days to
    ``today``), today's collections by branch and mode, cash in hand against the limit
    (each branch's latest DBS), pending approvals, and DCRs not submitted after cut-off.
    Read from the reporting database (a replica may be a few seconds behind)."""
    start = today - datetime.timedelta(days=days - 1)
    dates = [start + datetime.timedelta(days=n) for n in range(days)]
    mode_lines = scope_queryset(DcrLine.objects.all(), user).filter(
        dimension=DcrLine.Dimension.MODE
    )

    per_day = {
        (row["dcr__business_date"], row["key"]): row["amount"]
        for row in mode_lines.filter(dcr__business_date__range=(start, today))
        .values("dcr__business_date", "key")
        .annotate(amount=Sum("amount"))
        .order_by()
    }
    per_day_series = {
        "labels": [d.isoformat() for d in dates],
        "datasets": [
            {"label": mode, "data": [_money(per_day.get((d, mode))) for d in dates]}
            for mode in MODES
        ],
    }

    today_amounts = _today_by_branch_and_mode(mode_lines, today)
    today_branches = sorted({code for code, _ in today_amounts})
    today_series = {
        "labels": today_branches,
        "datasets": [
            {"label": mode, "data": [_money(today_amounts.get((b, mode))) for b in today_branches]}
            for mode in MODES
        ],
    }
    today_total = sum(today_amounts.values(), Decimal("0.00"))

    latest = _latest_dbs(user=user, today=today)
    cash_series = {
        "labels": [dbs.branch.code for dbs in latest],
        "closing": [_money(dbs.closing_cash) for dbs in latest],
        "limit": [_money(dbs.branch.cash_in_hand_limit) for dbs in latest],
        "over": [dbs.branch.code for dbs in latest if _over_limit(dbs)],
    }

    pending = _pending(user)

    late = dcrs_not_submitted(user=user, since=start)
    late_by_branch: dict[str, int] = {}
    for dcr in late:
        late_by_branch[dcr.branch.code] = late_by_branch.get(dcr.branch.code, 0) + 1
    return {
        "per_day": per_day_series,
        "today": today_series,
        "today_total": today_total,
        "cash": cash_series,
        "pending": pending,
        "not_submitted": late[:100],
        "not_submitted_count": len(late),
        "not_submitted_chart": {
            "labels": sorted(late_by_branch),
            "data": [late_by_branch[b] for b in sorted(late_by_branch)],
        },
    }


@reporting()
def dashboard_headline(*, user, today: datetime.date, days: int = 30) -> dict[str, Any]:
    """The dashboard's headline figures for the start page: collected today, pending
    approvals, DCRs not submitted after cut-off (``days`` back), branches over their cash
    limit. Read from the reporting database, as the dashboard is."""
    mode_lines = scope_queryset(DcrLine.objects.all(), user).filter(
        dimension=DcrLine.Dimension.MODE
    )
    latest = _latest_dbs(user=user, today=today)
    return {
        "today_total": sum(_today_by_branch_and_mode(mode_lines, today).values(), Decimal("0.00")),
        "pending": _pending(user),
        "not_submitted_count": len(
            dcrs_not_submitted(user=user, since=today - datetime.timedelta(days=days - 1))
        ),
        "over_limit": [dbs.branch for dbs in latest if _over_limit(dbs)],
    }


def _today_by_branch_and_mode(mode_lines: QuerySet, today: datetime.date) -> dict:
    """``{(branch code, mode): amount}`` of the DCR lines of ``today``."""
    return {
        (row["dcr__branch__code"], row["key"]): row["amount"]
        for row in mode_lines.filter(dcr__business_date=today)
        .values("dcr__branch__code", "key")
        .annotate(amount=Sum("amount"))
        .order_by()
    }


def _latest_dbs(*, user, today: datetime.date) -> list[Dbs]:
    """Each branch's latest DBS up to ``today``, by branch code."""
    latest = (
        dbss_visible(user=user)
        .filter(business_date__lte=today)
        .order_by("branch_id", "-business_date")
        .distinct("branch_id")
        .select_related("branch")
    )
    return sorted(latest, key=lambda dbs: dbs.branch.code)


def _over_limit(dbs: Dbs) -> bool:
    return dbs.closing_cash > dbs.branch.cash_in_hand_limit


def _pending(user) -> dict[str, int]:
    return {
        "dcr": dcrs_visible(user=user).filter(status=Status.SUBMITTED).count(),
        "dbs": dbss_visible(user=user).filter(status=Status.SUBMITTED).count(),
        "dcr_mine": dcrs_waiting_for(user=user).count(),
        "dbs_mine": dbss_waiting_for(user=user).count(),
    }


def dcrs_not_submitted(*, user, since: datetime.date) -> list[Dcr]:
    """DCRs of closed business dates (the branch's cut-off has passed) still in DRAFT or
    RETURNED, oldest first."""
    from payments.services import business_date_for

    now = timezone.now()
    candidates = (
        dcrs_visible(user=user)
        .filter(status__in=[Status.DRAFT, Status.RETURNED], business_date__gte=since)
        .defer("txn_ids", "excluded_txn_ids")
        .select_related("branch")
        .order_by("business_date", "branch__code")
    )
    return [dcr for dcr in candidates if dcr.business_date < business_date_for(dcr.branch, now)]


# --- Bank statements -------------------------------------------------------------------

STATEMENT_MATCH_DAYS = 7  # deposits up to this many days before a statement's first line


def statement_unmatched_deposits(upload: StatementUpload) -> list[Deposit]:
    """Deposits into the statement's account over its period (from a week before its
    first line) that no statement line matches."""
    start = upload.first_date - datetime.timedelta(days=STATEMENT_MATCH_DAYS)
    return list(
        Deposit.objects.filter(
            collection_account_id=upload.collection_account_id,
            deposit_date__range=(start, upload.last_date),
            statement_line__isnull=True,
        )
        .select_related("branch")
        .order_by("deposit_date", "id")
    )


def statement_line_notes(upload: StatementUpload) -> dict[int, str]:
    """Why an unmatched line did not match: its slip exists with another amount."""
    unmatched = list(upload.lines.filter(matched_deposit__isnull=True).exclude(reference=""))
    by_slip: dict[str, list[Decimal]] = defaultdict(list)
    for slip, amount in Deposit.objects.filter(
        collection_account_id=upload.collection_account_id,
        slip_number__in={line.reference for line in unmatched},
    ).values_list("slip_number", "amount"):
        by_slip[slip].append(amount)
    notes = {}
    for line in unmatched:
        amounts = by_slip.get(line.reference)
        if amounts:
            notes[line.pk] = "slip recorded with " + ", ".join(inr(a) for a in amounts)
        else:
            notes[line.pk] = "no deposit with this slip number"
    return notes
