"""Two processes importing the same file at the same moment (real threads, connections of
their own): one imports it, the other is told it is busy or finds every row unchanged;
nothing is created twice."""

from __future__ import annotations

import pytest

from accounts.models import Branch
from imports.exceptions import ImportBusy
from imports.models import ImportRun
from loans.models import Instalment, LoanAccount
from tests.concurrency import in_threads
from tests.factories import BranchFactory, LoanProductFactory

from .helpers import BRANCH, csv_file, customers_in, loan_row, run_import

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


def test_two_loans_files_sharing_loans_imported_at_once_create_each_loan_once():
    """Two files (two runs, no shared lease) with the same 60 loans in another order: the
    set-based chunks race on the loan numbers; the one that loses sees the other's loans
    (its COPY refused: the chunk goes row by row) and reports them unchanged."""
    branch = BranchFactory(code="PUN01")
    LoanProductFactory()
    customers_in(branch, range(60))
    rows = [loan_row(f"LN-{n}", f"LEG{n}", "PUN01") for n in range(60)]
    first, second = csv_file("loans", rows), csv_file("loans", rows[::-1])
    outcomes = in_threads(
        lambda: run_import("loans", [], content=first, name="a.csv"),
        lambda: run_import("loans", [], content=second, name="b.csv"),
    )
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert LoanAccount.objects.count() == 60
    assert Instalment.objects.count() == 60 * 12
    runs = ImportRun.objects.filter(status=ImportRun.Status.DONE)
    assert len(runs) == 2 and sum(run.created for run in runs) == 60
    assert all(run.created + run.unchanged == 60 and not run.refused for run in runs)
