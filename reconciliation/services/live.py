"""Today's DCR figures kept current from the transactions' stream (``streams/`` reads it
and calls :func:`dcr_live_apply` inside the PostgreSQL transaction that also writes its
checkpoint).

A transaction only moves forward: not in the DCR > collected (RECEIVED, POSTED) > not
collected (FAILED, REVERSED), and its branch, business date, mode, collector and amount
never change. The DCR's own id lists (``txn_ids``, ``excluded_txn_ids``) therefore say where
each transaction stands, and a record moves it forward or changes nothing: a record applied
twice, an older record after a newer one, or one the 15-minute roll-up has already counted
leaves the figures as they are. The totals and lines move by the transaction's own amount.

Only open business dates are kept current: a closed date is the daily job's (its DCR is
built from the ``branch_day`` index, and what arrives after submission is a late arrival),
and a submitted or approved DCR is never written here.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts import refdata as branch_refs
from core.clock import parse_iso
from core.money import from_paise
from payments.services import business_date_for

from ..models import FROZEN, Dcr, DcrLine
from ..selectors import COLLECTED, txn_figures
from ._common import KEY_LENGTH
from .build import _dcr_locked

_CHANGE_TIMES = ("created_at", "posted_at", "reversed_at")
_RANK = {"RECEIVED": 1, "POSTED": 1, "FAILED": 2, "REVERSED": 2}  # how far it has moved


@dataclass
class LiveReport:
    moved: int = 0  # transactions whose place in a DCR changed
    unchanged: int = 0  # already where the record puts them
    skipped: int = 0  # closed date, frozen DCR, unknown branch, or not a transaction image


@dataclass(frozen=True)
class _Seen:
    figures: tuple[str, str, str, int]  # mode, status, collector, paise
    changed_at: datetime.datetime


@transaction.atomic
def dcr_live_apply(*, records: Iterable[dict], now: datetime.datetime | None = None) -> LiveReport:
    """Apply stream records of the transactions table (DynamoDB's record format, as
    GetRecords or a Lambda event gives them, ``ApproximateCreationDateTime`` in epoch
    seconds) to the DCRs of their branches' open business dates."""
    now = now or timezone.now()
    report = LiveReport()
    pending: dict[tuple[int, datetime.date], dict[str, _Seen]] = defaultdict(dict)
    for record in records:
        image = (record.get("dynamodb") or {}).get("NewImage")
        if record.get("eventName") not in {"INSERT", "MODIFY"} or not image:
            report.skipped += 1  # a REMOVE (tests empty their tables), or no image
            continue
        try:
            seen = _Seen(txn_figures(image), _changed_at(record, image))
            key = (
                int(image["branch_id"]["N"]),
                datetime.date.fromisoformat(image["business_date"]["S"]),
            )
            txn_id = image["txn_id"]["S"]
        except (KeyError, TypeError, ValueError):
            report.skipped += 1  # not a transaction as payments writes it
            continue
        earlier = pending[key].get(txn_id)
        if earlier is None or _RANK.get(seen.figures[1], 0) >= _RANK.get(earlier.figures[1], 0):
            pending[key][txn_id] = seen
    branches = branch_refs.branches({branch_id for branch_id, _ in pending})
    for branch_id, day in sorted(pending):  # one order for every processor: no deadlock
        txns = pending[(branch_id, day)]
        branch = branches.get(branch_id)
        if branch is None or day < business_date_for(branch, now):
            report.skipped += len(txns)
            continue
        dcr = _dcr_locked(branch_id, day)
        if dcr.status in FROZEN:
            report.skipped += len(txns)
            continue
        moved = _dcr_move(dcr, txns, now=now)
        report.moved += moved
        report.unchanged += len(txns) - moved
    return report


def _changed_at(record: dict, image: dict) -> datetime.datetime:
    """When the change happened: the newest of the item's own times and the record's
    (DynamoDB's is rounded down, to the second on AWS and to the minute on DynamoDB Local)."""
    moments = [parse_iso(image[name]["S"]) for name in _CHANGE_TIMES if "S" in image.get(name, {})]
    approximate = record["dynamodb"].get("ApproximateCreationDateTime")
    if approximate is not None:
        moments.append(datetime.datetime.fromtimestamp(float(approximate), tz=datetime.UTC))
    return max(moments)


def _dcr_move(dcr: Dcr, txns: dict[str, _Seen], *, now: datetime.datetime) -> int:
    """Move each transaction forward in the locked DCR; returns how many moved."""
    collected, excluded = set(dcr.txn_ids), set(dcr.excluded_txn_ids)
    deltas: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    def add(dimension: str, key: str, sign: int, paise: int) -> None:
        delta = deltas[(dimension, (key or "")[:KEY_LENGTH])]
        delta[0] += sign
        delta[1] += sign * paise

    moved, newest = 0, dcr.read_started_at
    for txn_id, seen in txns.items():
        mode, status, collector, paise = seen.figures
        if txn_id in excluded or (status in COLLECTED and txn_id in collected):
            continue
        if status in COLLECTED:
            collected.add(txn_id)
            add("MODE", mode, 1, paise)
            add("COLLECTOR", collector, 1, paise)
        else:
            if txn_id in collected:
                collected.discard(txn_id)
                add("MODE", mode, -1, paise)
                add("COLLECTOR", collector, -1, paise)
            excluded.add(txn_id)
            add("EXCLUDED", status, 1, paise)
        moved += 1
        newest = seen.changed_at if newest is None else max(newest, seen.changed_at)
    if not moved:
        return 0
    _lines_move(dcr, deltas)
    for (dimension, key), (count, paise) in deltas.items():
        if dimension == "MODE":
            dcr.collected_count += count
            dcr.collected_amount += from_paise(paise)
            if key == "CASH":
                dcr.cash_amount += from_paise(paise)
        elif dimension == "EXCLUDED":
            dcr.excluded_count += count
            dcr.excluded_amount += from_paise(paise)
    dcr.txn_ids, dcr.excluded_txn_ids = sorted(collected), sorted(excluded)
    dcr.is_provisional = True
    # A roll-up whose read began before the newest change applied here may have missed it:
    # its write is then refused as stale (build._dcr_upsert), as for any older read.
    dcr.read_started_at = newest
    dcr.computed_at = now
    dcr.save(
        update_fields=[
            "collected_count", "collected_amount", "cash_amount", "excluded_count",
            "excluded_amount", "txn_ids", "excluded_txn_ids", "is_provisional",
            "read_started_at", "computed_at",
        ]
    )  # fmt: skip
    return moved


def _lines_move(dcr: Dcr, deltas: dict[tuple[str, str], list[int]]) -> None:
    """Add the deltas to the DCR's lines: a line is created at its first transaction and
    removed when it counts none (as a build would leave it)."""
    lines = {(line.dimension, line.key): line for line in DcrLine.objects.filter(dcr=dcr)}
    created, changed, emptied = [], [], []
    for (dimension, key), (count, paise) in deltas.items():
        if count == 0 and paise == 0:
            continue
        line = lines.get((dimension, key))
        if line is None:
            created.append(
                DcrLine(
                    dcr=dcr, dimension=dimension, key=key, count=count, amount=from_paise(paise)
                )
            )
            continue
        line.count += count
        line.amount += from_paise(paise)
        (emptied if line.count <= 0 else changed).append(line)
    DcrLine.objects.bulk_create(created)
    DcrLine.objects.bulk_update(changed, ["count", "amount"])
    DcrLine.objects.filter(pk__in=[line.pk for line in emptied]).delete()
