"""What more than one reconciliation seam needs: a DCR's figures and lines written from a
branch-day, whether its date is closed, and who contributed to a DCR or DBS."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from accounts.models import Branch
from approvals.services import subject_contribution_record, subject_of
from core.money import from_paise
from payments.services import business_date_for

from ..models import Dbs, Dcr, DcrLine, LateArrival
from ..selectors import DayFigures

KEY_LENGTH = DcrLine._meta.get_field("key").max_length


@dataclass(frozen=True)
class DcrRef:
    """What a DBS needs of its DCR (never the DCR's long id lists)."""

    pk: int
    status: str
    cash_amount: Decimal


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


def _is_closed(
    branch: Branch, business_date: datetime.date, now: datetime.datetime | None = None
) -> bool:
    """A business date is closed once the branch's cut-off on that date has passed."""
    return business_date < business_date_for(branch, now or timezone.now())


def _contributed(obj: Dcr | Dbs, actor, kind: str) -> None:
    """``actor`` changed what ``obj`` (locked by the caller) holds: they may not decide it."""
    subject_contribution_record(subject=subject_of(obj), actor=actor, kind=kind)
