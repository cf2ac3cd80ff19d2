"""What reconciliation adds to the admin's start page (registered in
``ReconciliationConfig.ready()``): today at the user's branch or branches (what was
collected so far, from the branch-day's transactions, and the day's DCR with its status),
and for those over many branches the dashboard's headline figures."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Branch, User
from accounts.scoping import home_branch_ids
from core.money import from_paise
from payments.services import business_date_for

from . import selectors
from .models import Dcr

TODAY_BRANCHES = 20  # a region's branches at most; the dashboard shows every branch


@dataclass(frozen=True)
class BranchToday:
    branch: Branch
    business_date: datetime.date
    count: int | None  # None: the transactions could not be read
    amount: Decimal | None
    dcr: Dcr | None


def works_at_branches(user) -> bool:
    """A user of a branch, an area or a region (head office reads the dashboard)."""
    return user.level in (User.Level.BRANCH, User.Level.AREA, User.Level.REGION)


def oversees_branches(user) -> bool:
    return user.level != User.Level.BRANCH


def branches_today(user) -> list[BranchToday]:
    """Each home branch's current business date: receipts collected (RECEIVED or POSTED)
    so far and its DCR, if built."""
    now = timezone.now()
    branches = list(
        selectors.branches_visible(user=user).filter(id__in=home_branch_ids(user))[:TODAY_BRANCHES]
    )
    dates = {branch.pk: business_date_for(branch, now) for branch in branches}
    figures = dict(selectors.branch_days_figures(dates.items()))
    dcrs = {
        (dcr.branch_id, dcr.business_date): dcr
        for dcr in selectors.dcrs_visible(user=user)
        .filter(branch_id__in=dates, business_date__in=set(dates.values()))
        .defer("txn_ids", "excluded_txn_ids")
    }
    rows = []
    for branch in branches:
        key = (branch.pk, dates[branch.pk])
        read = figures.get(key)
        count = amount = None
        if isinstance(read, selectors.DayFigures):
            collected = read.totals()["MODE"].values()
            count = sum(pair[0] for pair in collected)
            amount = from_paise(sum(pair[1] for pair in collected))
        rows.append(BranchToday(branch, dates[branch.pk], count, amount, dcrs.get(key)))
    return rows


def today_panel(request) -> str:
    rows = branches_today(request.user)
    if not rows:
        return ""
    context = {"rows": rows, "single": len(rows) == 1}
    return render_to_string("reconciliation/home/today_panel.html", context, request=request)


def dashboard_panel(request) -> str:
    today = timezone.localdate()
    headline = selectors.dashboard_headline(user=request.user, today=today)
    context = {"today": today, "headline": headline}
    return render_to_string("reconciliation/home/dashboard_panel.html", context, request=request)
