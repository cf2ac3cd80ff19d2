"""The loans import's set-based path (a chunk validated at once and written with COPY):
a chunk with a refused row goes row by row, a re-run changes nothing, an import killed
mid-run resumes after its last committed chunk, and both paths write the same rows."""

from __future__ import annotations

import datetime
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from audit.models import AuditMessage
from core.models import JobRun
from imports import services
from imports.importers.loans import LoanImporter
from imports.models import ImportRowResult, ImportRun
from loans.models import CoBorrower, Instalment, LoanAccount
from tests.factories import BranchFactory, LoanProductFactory, UserFactory
from tests.processes import ROOT, environment

from .helpers import csv_file, customers_in, loan_row, results, run_import, schedule_file, statuses

S = ImportRowResult.Status


@pytest.fixture
def book(db):
    branch = BranchFactory(code="PUN01")
    LoanProductFactory()
    customers_in(branch, range(1, 10))
    return branch


@pytest.fixture
def chunks(monkeypatch):
    """Chunks of three rows, and what the set-based path answered for each: its statuses,
    or None (the chunk then went row by row)."""
    monkeypatch.setattr(LoanImporter, "chunk_rows", 3)
    answers: list = []
    original = LoanImporter.import_chunk

    def recording(self, rows):
        answer = original(self, rows)
        answers.append(answer)
        return answer

    monkeypatch.setattr(LoanImporter, "import_chunk", recording)
    return answers


def test_a_chunk_with_one_bad_row_goes_row_by_row_and_reports_it_by_line(book, chunks):
    run = run_import(
        "loans",
        [
            loan_row("LN-1", "LEG1", "PUN01", co_borrowers="LEG2:SPOUSE"),
            loan_row("LN-2", "LEG2", "PUN01"),
            loan_row("LN-3", "LEG3", "PUN01"),
            loan_row("LN-4", "LEG4", "PUN01"),
            loan_row("LN-5", "LEG5", "PUN01", co_borrowers="LEG99:SPOUSE"),  # line 6
            loan_row("LN-6", "LEG6", "PUN01"),
        ],
    )
    assert chunks == [[S.CREATED] * 3, None]  # the second chunk went row by row
    assert results(run)[6] == (
        S.REFUSED,
        "co_borrowers",
        "No customer has the number LEG99: import it first.",
    )
    assert statuses(run) == [S.CREATED] * 4 + [S.REFUSED, S.CREATED]
    assert run.counts == {"total": 6, "created": 5, "updated": 0, "unchanged": 0, "refused": 1}
    assert not LoanAccount.objects.filter(loan_number="LN-5").exists()
    assert Instalment.objects.count() == 5 * 12
    loan = LoanAccount.objects.get(loan_number="LN-1")
    assert [c.customer.customer_number for c in loan.co_borrowers.all()] == ["LEG2"]
    # the set-based loans have their create events, as the change tracking writes them
    event = AuditMessage.objects.get(ref=f"loans.loanaccount#{loan.pk}", payload__action="create")
    assert event.payload["changes"]["loan_number"] == [None, "LN-1"]
    assert event.payload["changes"]["outstanding_principal"] == [None, "120000.00"]
    assert AuditMessage.objects.filter(ref__startswith="loans.coborrower#").count() == 1


def test_a_row_of_a_chunk_refused_by_the_loans_own_checks_goes_row_by_row(book, chunks):
    run = run_import(
        "loans",
        [
            loan_row("LN-1", "LEG1", "PUN01", tenure_months="120"),
            loan_row("LN-2", "LEG2", "PUN01", co_borrowers="LEG2:SPOUSE"),
            loan_row("LN-1", "LEG3", "PUN01"),  # the same loan number again
        ],
    )
    assert chunks == [None]
    got = results(run)
    assert got[2] == (S.REFUSED, "tenure_months", "MSME allows a tenure of 6 to 60 months.")
    assert got[3][:2] == (S.REFUSED, "customer")
    assert "borrower cannot also be a co-borrower" in got[3][2]
    assert got[4] == (S.CREATED, "", "")  # LN-1 was refused: this row of it is new
    assert list(LoanAccount.objects.values_list("customer__customer_number", flat=True)) == ["LEG3"]


def test_a_rerun_changes_nothing_and_other_terms_are_refused(book, chunks):
    rows = [loan_row(f"LN-{n}", f"LEG{n}", "PUN01") for n in range(1, 7)]
    run_import("loans", rows)
    written = list(LoanAccount.objects.order_by("pk").values_list("pk", "updated_at"))
    events = AuditMessage.objects.count()

    again = run_import("loans", rows)
    assert statuses(again) == [S.UNCHANGED] * 6
    assert chunks[-2:] == [[S.UNCHANGED] * 3, [S.UNCHANGED] * 3]  # set-based, no write
    assert list(LoanAccount.objects.order_by("pk").values_list("pk", "updated_at")) == written
    assert Instalment.objects.count() == 6 * 12
    assert AuditMessage.objects.count() == events + 1  # the run's own event only

    other = run_import("loans", [loan_row("LN-1", "LEG1", "PUN01", tenure_months="18")])
    assert chunks[-1] is None
    assert results(other)[2][:2] == (S.REFUSED, "tenure_months")


def test_a_dry_run_of_the_set_based_path_writes_nothing(book, chunks):
    before = AuditMessage.objects.count()
    run = run_import(
        "loans", [loan_row(f"LN-{n}", f"LEG{n}", "PUN01") for n in range(1, 5)], dry_run=True
    )
    assert chunks == [[S.CREATED] * 3, [S.CREATED]]
    assert statuses(run) == [S.CREATED] * 4
    assert not LoanAccount.objects.exists() and not Instalment.objects.exists()
    assert AuditMessage.objects.count() == before


def _written() -> dict:
    """Every loan, instalment and co-borrower, by loan number (no ids, no times)."""
    skip = {"id", "created_at", "updated_at"}
    loans = {}
    for loan in LoanAccount.objects.order_by("loan_number"):
        values = {
            f.attname: getattr(loan, f.attname)
            for f in LoanAccount._meta.concrete_fields
            if f.attname not in skip
        }
        values["instalments"] = list(
            loan.instalments.order_by("number").values_list(*Instalment.SCHEDULE_FIELDS, "status")
        )
        values["co_borrowers"] = sorted(
            loan.co_borrowers.values_list("customer__customer_number", "relationship", "role")
        )
        loans[loan.loan_number] = values
    return loans


def test_the_set_based_and_row_by_row_paths_write_the_same_rows(book, chunks, monkeypatch):
    officer = UserFactory(role="Branch Staff", home_branch=book)
    rows = [
        loan_row("LN-1", "LEG1", "PUN01", co_borrowers="LEG2:SPOUSE;LEG3:PARENT:GUARANTOR"),
        loan_row("LN-2", "LEG2", "PUN01", interest_rate="12.5", tenure_months="24"),
        loan_row("LN-3", "LEG3", "PUN01", collection_officer=officer.username),
        loan_row("LN-4", "LEG4", "PUN01", disbursed_on="2025-03-20", due_day="28"),  # overdue
        loan_row("LN-5", "LEG5", "PUN01", sanctioned_amount="150000", disbursed_amount="99999"),
        loan_row("LN-6", "LEG6", "PUN01"),  # its own schedule
    ]
    schedule = schedule_file(
        [
            ("LN-6", 1, "2026-02-05", "60000.00", "1800.00"),
            ("LN-6", 2, "2026-03-05", "60000.00", "900.00"),
        ]
    )
    monkeypatch.setattr(LoanImporter, "import_chunk", lambda self, rows: None)
    by_rows = run_import("loans", rows, schedule=schedule)
    row_by_row = _written()
    row_results = results(by_rows)
    LoanAccount.objects.all().delete()
    monkeypatch.undo()
    monkeypatch.setattr(LoanImporter, "chunk_rows", 3)

    set_based = run_import("loans", rows, schedule=schedule, name="again.csv")
    assert set_based.pk != by_rows.pk
    assert results(set_based) == row_results
    assert _written() == row_by_row
    overdue = row_by_row["LN-4"]
    assert overdue["dpd"] > 0 and overdue["bucket"] != "CURRENT"  # the derived fields too
    assert [line[:4] for line in row_by_row["LN-6"]["instalments"]] == [
        (1, datetime.date(2026, 2, 5), Decimal("60000.00"), Decimal("1800.00")),
        (2, datetime.date(2026, 3, 5), Decimal("60000.00"), Decimal("900.00")),
    ]
    assert row_by_row["LN-3"]["collection_officer_id"] == officer.pk


# --- An import killed mid-run --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_import_killed_mid_run_resumes_after_its_last_committed_chunk(tmp_path):
    loans = 3500  # four chunks of 1,000
    branch = BranchFactory(code="PUN01")
    LoanProductFactory()
    customers_in(branch, range(loans))
    rows = [loan_row(f"LN-{n}", f"LEG{n}", "PUN01") for n in range(loans)]
    path = tmp_path / "loans.csv"
    path.write_bytes(csv_file("loans", rows))
    db = connection.settings_dict
    env = environment(
        DJANGO_SETTINGS_MODULE="config.settings_test",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "import_data", "loans", str(path), "-v", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        while not ImportRun.objects.filter(last_line__gt=0).exists():
            assert process.poll() is None, process.stderr.read().decode()
            assert time.monotonic() < deadline, "the first chunk never committed"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)  # mid-way through the second chunk
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.RUNNING and run.last_line < loans + 1
    committed = run.last_line - 1  # the header is line 1
    assert committed % 1000 == 0 and committed >= 1000
    # whole chunks only: every committed loan with its schedule and result, nothing more
    assert LoanAccount.objects.count() == committed == run.results.count()
    assert Instalment.objects.count() == committed * 12

    # the dead process's lease runs out (5 minutes): then the same file resumes the run
    JobRun.objects.filter(name=services.IMPORT_JOB).update(
        lease_until=timezone.now() - datetime.timedelta(seconds=1)
    )
    resumed = services.import_run(
        kind="loans", file_name=path.name, source=path.open("rb"), actor=None
    )
    assert resumed.pk == run.pk and resumed.status == ImportRun.Status.DONE
    assert resumed.counts == {
        "total": loans,
        "created": loans,
        "updated": 0,
        "unchanged": 0,
        "refused": 0,
    }
    assert list(resumed.results.values_list("line", flat=True)) == list(range(2, loans + 2))
    assert LoanAccount.objects.count() == loans
    assert Instalment.objects.count() == loans * 12
    assert not CoBorrower.objects.exists()
