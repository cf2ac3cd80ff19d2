"""Reads of import runs: a user sees their own runs; who sees every branch sees all."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.scoping import visible_branch_ids

from .models import ImportRowResult, ImportRun


def import_runs_for(user) -> QuerySet[ImportRun]:
    runs = ImportRun.objects.select_related("actor").defer("content", "schedule_content")
    if not user.is_authenticated or not user.is_active:
        return runs.none()
    if visible_branch_ids(user) is None:
        return runs
    return runs.filter(actor=user)


def import_run_results(run: ImportRun, *, problems_only: bool = False) -> QuerySet:
    results = run.results.order_by("line")
    if problems_only:
        results = results.filter(status=ImportRowResult.Status.REFUSED)
    return results
