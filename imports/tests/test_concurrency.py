"""Two processes importing the same file at the same moment (real threads, connections of
their own): one imports it, the other is told it is busy or finds every row unchanged;
nothing is created twice."""

from __future__ import annotations

import pytest

from accounts.models import Branch
from imports.exceptions import ImportBusy
from imports.models import ImportRun
from tests.concurrency import in_threads

from .helpers import BRANCH, csv_file, run_import

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_same_file_imported_twice_at_once_creates_each_row_once():
    rows = [{**BRANCH, "code": f"B{n:03d}", "name": f"Branch {n}"} for n in range(300)]
    content = csv_file("branches", rows)
    outcomes = in_threads(
        lambda: run_import("branches", [], content=content),
        lambda: run_import("branches", [], content=content),
    )
    errors = [o for o in outcomes if isinstance(o, Exception)]
    assert all(isinstance(e, ImportBusy) for e in errors), errors
    assert Branch.objects.count() == 300
    runs = ImportRun.objects.filter(status=ImportRun.Status.DONE)
    assert sum(run.created for run in runs) == 300
    assert all(run.created + run.unchanged == 300 for run in runs)
