"""Reads of import runs: a user sees their own runs and those of the branches in their
scope (``accounts.scoping``); who sees every branch sees all."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts.scoping import visible_branch_ids

from .models import ImportRowResult, ImportRun


def import_runs_for(user) -> QuerySet[ImportRun]:
    runs = ImportRun.objects.select_related("actor", "branch").defer("content", "schedule_content")
    if not user.is_authenticated or not user.is_active:
        return runs.none()
    branch_ids = visible_branch_ids(user)
    if branch_ids is None:
        return runs
    return runs.filter(Q(actor=user) | Q(branch_id__in=sorted(branch_ids)))


def import_run_results(run: ImportRun, *, problems_only: bool = False) -> QuerySet:
    results = run.results.order_by("line")
    if problems_only:
        results = results.filter(status=ImportRowResult.Status.REFUSED)
    return results
