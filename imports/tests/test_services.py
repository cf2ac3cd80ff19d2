"""The import engine and its importers: good and bad rows, a second run that changes
nothing, a dry run that writes nothing, a resumed run, scoping, the audit event."""

from __future__ import annotations

import datetime
import io
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group

from accounts.models import Area, Branch, Region, User
from audit.models import AuditMessage
from core.workflow import NotAllowed
from imports import services
from imports.exceptions import ImportRefused
from imports.importers import IMPORTERS
from imports.models import ImportRowResult, ImportRun, ImportScheduleLine
from loans.models import CoBorrower, Customer, CustomerBankAccount, Instalment, LoanAccount
from mandates.models import Mandate, ScheduledPresentation
from tests.factories import (
    BankingPartnerFactory,
    BranchFactory,
    LoanProductFactory,
    UserFactory,
    make_loan,
)

from .helpers import (
    BRANCH,
    csv_file,
    customer_row,
    loan_row,
    results,
    run_import,
    schedule_file,
    statuses,
    xlsx_file,
)

pytestmark = pytest.mark.django_db
S = ImportRowResult.Status


# --- Branches and staff -----------------------------------------------------------------


def test_branches_created_with_their_area_and_region_and_bad_rows_refused():
    run = run_import(
        "branches",
        [
            {**BRANCH, "cash_in_hand_limit": "3,00,000.00", "cutoff_time": "18:30"},
            {**BRANCH, "code": "PUN02", "name": "Kothrud", "area_name": "", "region_name": ""},
            {**BRANCH, "code": "bad code"},
            {**BRANCH, "code": "NAG01", "area_code": "NAG", "area_name": ""},
            {**BRANCH, "code": "PUN03", "cash_receipt_limit": "250000"},
        ],
    )
    assert run.status == ImportRun.Status.DONE
    assert run.counts == {"total": 5, "created": 2, "updated": 0, "unchanged": 0, "refused": 3}
    got = results(run)
    assert got[2][0] == got[3][0] == S.CREATED
    assert got[4][:2] == (S.REFUSED, "code")
    assert got[5] == (S.REFUSED, "area_name", "The area NAG is new: give its name.")
    assert got[6][:2] == (S.REFUSED, "cash_receipt_limit")
    branch = Branch.objects.get(code="PUN01")
    assert branch.cash_in_hand_limit == Decimal("300000.00")
    assert branch.cutoff_time.hour == 18 and branch.cutoff_time.minute == 30
    assert branch.area.code == "PUN" and branch.area.region.code == "WEST"
    assert not Branch.objects.filter(code__in=["NAG01", "PUN03"]).exists()
    assert not Area.objects.filter(code="NAG").exists()


def test_the_same_branches_file_again_changes_nothing_and_a_changed_row_updates():
    rows = [BRANCH, {**BRANCH, "code": "PUN02", "name": "Kothrud"}]
    run_import("branches", rows)
    again = run_import("branches", rows)
    assert again.pk != ImportRun.objects.order_by("pk").first().pk
    assert statuses(again) == [S.UNCHANGED, S.UNCHANGED]
    changed = run_import("branches", [{**BRANCH, "name": "Pune Camp Road"}])
    assert statuses(changed) == [S.UPDATED]
    assert Branch.objects.get(code="PUN01").name == "Pune Camp Road"
    assert Branch.objects.count() == 2 and Region.objects.count() == 1


def test_staff_users_created_with_roles_and_no_usable_password():
    run_import("branches", [BRANCH])
    rows = [
        {
            "username": "asha",
            "first_name": "Asha",
            "mobile": "098765 43210",
            "level": "branch",
            "home_code": "pun01",
            "roles": "Branch Staff; Branch Manager",
        },
        {"username": "ops1", "first_name": "Omkar", "level": "HEAD_OFFICE", "roles": "Operations"},
        {"username": "bad1", "first_name": "B", "level": "BRANCH", "home_code": "NOPE"},
        {
            "username": "bad2",
            "first_name": "B",
            "level": "AREA",
            "home_code": "PUN",
            "roles": "Boss",
        },
        {"username": "bad3", "first_name": "B", "level": "HEAD_OFFICE", "mobile": "12345"},
        {"username": "bad4", "first_name": "B", "level": "BRANCH"},
    ]
    run = run_import("users", rows)
    got = results(run)
    assert [got[n][0] for n in (2, 3)] == [S.CREATED, S.CREATED]
    assert got[4] == (S.REFUSED, "home_code", "No branch has the code NOPE.")
    assert got[5][:2] == (S.REFUSED, "roles")
    assert got[6][:2] == (S.REFUSED, "mobile")
    assert got[7][:2] == (S.REFUSED, "home_code")
    asha = User.objects.get(username="asha")
    assert asha.mobile == "9876543210" and asha.home_branch.code == "PUN01"
    assert asha.level == User.Level.BRANCH and asha.is_active
    assert not asha.has_usable_password()
    assert set(asha.groups.values_list("name", flat=True)) == {"Branch Staff", "Branch Manager"}
    assert not User.objects.filter(username__startswith="bad").exists()
    assert statuses(run_import("users", rows[:2])) == [S.UNCHANGED, S.UNCHANGED]
    moved = run_import("users", [{**rows[0], "roles": "Branch Staff"}])
    assert statuses(moved) == [S.UPDATED]
    assert list(asha.groups.values_list("name", flat=True)) == ["Branch Staff"]


def test_a_branch_manager_imports_only_their_branch_staff_and_no_branch():
    run_import("branches", [BRANCH, {**BRANCH, "code": "PUN02", "name": "Kothrud"}])
    manager = UserFactory(role="Branch Manager", home_branch=Branch.objects.get(code="PUN01"))
    users = run_import(
        "users",
        [
            {"username": "mine", "first_name": "M", "level": "BRANCH", "home_code": "PUN01"},
            {"username": "theirs", "first_name": "T", "level": "BRANCH", "home_code": "PUN02"},
            {"username": "boss", "first_name": "B", "level": "HEAD_OFFICE"},
        ],
        actor=manager,
    )
    got = results(users)
    assert got[2][0] == S.CREATED
    assert got[3][:2] == (S.REFUSED, "home_branch")
    assert got[4][:2] == (S.REFUSED, "level")
    branches = run_import("branches", [{**BRANCH, "code": "PUN09", "name": "New"}], actor=manager)
    assert results(branches)[2] == (
        S.REFUSED,
        "code",
        "Only a user who sees every branch adds branches.",
    )
    assert users.actor == manager


def test_an_actor_without_the_import_permission_is_refused_as_a_whole():
    staff = UserFactory(role="Branch Staff", home_branch=BranchFactory())
    with pytest.raises(NotAllowed):
        run_import("branches", [BRANCH], actor=staff)
    assert not ImportRun.objects.exists()


# --- Customers --------------------------------------------------------------------------


def test_customers_with_bank_accounts_and_kyc_checks():
    branch = BranchFactory(code="PUN01")
    rows = [
        customer_row("LEG1", "PUN01"),
        customer_row(
            "LEG2", "PUN01", bank_holder_name="", bank_name="", bank_account_number="", bank_ifsc=""
        ),
        customer_row("LEG3", "PUN01", pan="ABCD1234F"),
        customer_row("LEG4", "PUN01", mobile="5876543210"),
        customer_row("LEG5", "PUN01", bank_ifsc="SBIN1234567"),
        customer_row("LEG6", "PUN01", bank_ifsc=""),
        customer_row("LEG7", "NOPE"),
    ]
    run = run_import("customers", rows)
    got = results(run)
    assert got[2][0] == got[3][0] == S.CREATED
    assert got[4][:2] == (S.REFUSED, "pan")
    assert got[5][:2] == (S.REFUSED, "mobile")
    assert got[6][:2] == (S.REFUSED, "bank_ifsc")
    assert got[7] == (S.REFUSED, "bank_ifsc", "Give all four bank columns, or none.")
    assert got[8] == (S.REFUSED, "branch_code", "No branch has the code NOPE.")
    first = Customer.objects.get(customer_number="LEG1")
    assert (first.branch, first.mobile, first.pan) == (branch, "9876543210", "ABCDE1234F")
    account = first.bank_accounts.get()
    assert account.is_primary and account.account_number == "123456789012"
    assert not Customer.objects.get(customer_number="LEG2").bank_accounts.exists()
    assert Customer.objects.count() == 2 and CustomerBankAccount.objects.count() == 1


def test_customers_again_unchanged_a_new_address_updates_a_new_pan_is_refused():
    BranchFactory(code="PUN01")
    run_import("customers", [customer_row("LEG1", "PUN01")])
    assert statuses(run_import("customers", [customer_row("LEG1", "PUN01")])) == [S.UNCHANGED]
    moved = run_import(
        "customers",
        [
            customer_row("LEG1", "PUN01", address="New address"),
            customer_row("LEG1", "PUN01", pan="ZZZZZ9999Z"),
            customer_row("LEG1", "PUN01", bank_account_number="999999999999"),
        ],
    )
    got = results(moved)
    assert got[2][0] == S.UPDATED
    assert got[3][:2] == (S.REFUSED, "pan") and "change request" in got[3][2]
    assert got[4][:2] == (S.REFUSED, "bank_account_number")
    customer = Customer.objects.get(customer_number="LEG1")
    assert customer.address == "New address" and customer.pan == "ABCDE1234F"


def test_a_branch_user_imports_only_their_branch_customers():
    mine, other = BranchFactory(code="PUN01"), BranchFactory(code="PUN02")
    manager = UserFactory(role="Branch Manager", home_branch=mine)
    run = run_import(
        "customers",
        [customer_row("LEG1", "PUN01"), customer_row("LEG2", "PUN02")],
        actor=manager,
    )
    got = results(run)
    assert got[2][0] == S.CREATED
    assert got[3] == (S.REFUSED, "branch_code", "The row belongs to a branch outside yours.")
    assert not Customer.objects.filter(branch=other).exists()
    ops = UserFactory(role="Operations")
    assert statuses(run_import("customers", [customer_row("LEG2", "PUN02")], actor=ops)) == [
        S.CREATED
    ]


# --- Loans ------------------------------------------------------------------------------


@pytest.fixture
def book():
    branch = BranchFactory(code="PUN01")
    LoanProductFactory()
    run_import(
        "customers",
        [customer_row(f"LEG{n}", "PUN01", pan=f"ABCDE123{n}F") for n in range(1, 4)],
    )
    return branch


def test_loans_with_generated_schedule_and_co_borrowers(book):
    run = run_import(
        "loans",
        [
            loan_row("LN-A1", "LEG1", "PUN01", co_borrowers="LEG2:spouse;LEG3:PARENT:GUARANTOR"),
            loan_row("LN-A2", "LEG2", "PUN01", interest_rate="12.5", tenure_months="24"),
        ],
    )
    assert statuses(run) == [S.CREATED, S.CREATED]
    loan = LoanAccount.objects.get(loan_number="LN-A1")
    assert loan.interest_rate == Decimal("18.00")  # the product's
    assert loan.instalments.count() == 12
    assert sum(i.principal_due for i in loan.instalments.all()) == Decimal("120000.00")
    assert loan.outstanding_principal == Decimal("120000.00") and loan.emi_amount > 0
    assert {
        (c.customer.customer_number, c.relationship, c.role) for c in loan.co_borrowers.all()
    } == {
        ("LEG2", "SPOUSE", "CO_BORROWER"),
        ("LEG3", "PARENT", "GUARANTOR"),
    }
    other = LoanAccount.objects.get(loan_number="LN-A2")
    assert other.interest_rate == Decimal("12.50") and other.instalments.count() == 24


def test_a_refused_loan_row_leaves_no_loan_and_no_schedule(book):
    run = run_import(
        "loans",
        [
            loan_row("LN-B1", "LEG1", "PUN01", co_borrowers="LEG9:SPOUSE"),
            loan_row("LN-B2", "LEG9", "PUN01"),
            loan_row("LN-B3", "LEG1", "PUN01", disbursed_amount="130000"),
            loan_row("LN-B4", "LEG1", "PUN01", tenure_months="120"),
            loan_row("LN-B5", "LEG1", "PUN01", product_code="NOPE"),
            loan_row("LN-B6", "LEG1", "PUN01", co_borrowers="LEG2"),
            loan_row("LN-B7", "LEG1", "PUN01", disbursed_on="31-02-2026"),
            loan_row("LN-B8", "LEG1", "PUN01", collection_officer="nobody"),
        ],
    )
    got = results(run)
    assert got[2] == (
        S.REFUSED,
        "co_borrowers",
        "No customer has the number LEG9: import it first.",
    )
    assert got[3][:2] == (S.REFUSED, "customer_number")
    assert got[4][:2] == (S.REFUSED, "disbursed_amount")
    assert got[5][:2] == (S.REFUSED, "tenure_months")
    assert got[6][:2] == (S.REFUSED, "product_code")
    assert got[7][:2] == (S.REFUSED, "co_borrowers")
    assert got[8][:2] == (S.REFUSED, "disbursed_on")
    assert got[9][:2] == (S.REFUSED, "collection_officer")
    assert not LoanAccount.objects.exists()
    assert not Instalment.objects.exists() and not CoBorrower.objects.exists()


def test_loans_again_unchanged_and_other_terms_refused(book):
    rows = [loan_row("LN-C1", "LEG1", "PUN01")]
    run_import("loans", rows)
    assert statuses(run_import("loans", rows)) == [S.UNCHANGED]
    changed = run_import("loans", [loan_row("LN-C1", "LEG1", "PUN01", tenure_months="18")])
    assert results(changed)[2][:2] == (S.REFUSED, "tenure_months")
    assert LoanAccount.objects.get().instalments.count() == 12


def test_loans_take_their_own_schedule_from_a_second_file_in_any_order(book):
    lines = [
        # LN-S2's lines first, then LN-S1's out of order: the file's order does not matter
        ("LN-S2", 1, "2026-02-05", "60000.00", "1800.00"),
        ("LN-S1", 2, "2026-03-05", "70000.00", "700.00"),
        ("LN-S2", 2, "2026-03-05", "60000.00", "900.00"),
        ("LN-S1", 1, "05-02-2026", "50000.00", "1800.00"),
        ("LN-S3", 1, "2026-02-05", "100000.00", "900.00"),  # adds up to less
        ("LN-S4", 1, "2026-02-05", "x", "900.00"),
    ]
    run = run_import(
        "loans",
        [
            loan_row("LN-S1", "LEG1", "PUN01"),
            loan_row("LN-S2", "LEG2", "PUN01"),
            loan_row("LN-S3", "LEG3", "PUN01"),
            loan_row("LN-S4", "LEG3", "PUN01"),
            loan_row("LN-S5", "LEG3", "PUN01"),
        ],
        schedule=schedule_file(lines),
    )
    got = results(run)
    assert got[2] == got[3] == (S.CREATED, "", "")
    assert got[4][:2] == (S.REFUSED, "schedule") and "adds up to 100000.00" in got[4][2]
    assert got[5] == (S.REFUSED, "schedule", "Schedule line 7: principal_due: Enter a number.")
    assert got[6] == (
        S.CREATED,
        "",
        "Not in the schedule file: the schedule is generated from the terms.",
    )
    first = LoanAccount.objects.get(loan_number="LN-S1")
    assert [(i.number, i.principal_due, i.interest_due) for i in first.instalments.all()] == [
        (1, Decimal("50000.00"), Decimal("1800.00")),
        (2, Decimal("70000.00"), Decimal("700.00")),
    ]
    assert first.outstanding_interest == Decimal("2500.00")
    assert LoanAccount.objects.get(loan_number="LN-S5").instalments.count() == 12
    assert not LoanAccount.objects.filter(loan_number__in=["LN-S3", "LN-S4"]).exists()
    assert not ImportScheduleLine.objects.exists()  # the staging is gone with the run
    assert run.schedule_file_name == "schedule.csv"


def test_a_schedule_file_out_of_line_refuses_its_loan(book):
    run = run_import(
        "loans",
        [loan_row("LN-T1", "LEG1", "PUN01"), loan_row("LN-T2", "LEG2", "PUN01")],
        schedule=schedule_file(
            [
                ("LN-T1", 1, "2026-02-05", "60000", "0"),
                ("LN-T1", 3, "2026-03-05", "60000", "0"),
                ("LN-T2", 1, "2026-03-05", "60000", "0"),
                ("LN-T2", 2, "2026-02-05", "60000", "0"),
            ]
        ),
    )
    got = results(run)
    assert got[2] == (
        S.REFUSED,
        "schedule",
        "The instalments are not numbered 1, 2, 3, ... once each.",
    )
    assert got[3][:2] == (S.REFUSED, "schedule") and "each after the last" in got[3][2]
    assert not LoanAccount.objects.exists()


def test_only_loans_take_a_schedule_file():
    with pytest.raises(ImportRefused, match="takes no schedule"):
        run_import("branches", [BRANCH], schedule=schedule_file([]))


def test_a_branch_user_imports_only_their_branch_loans(book):
    BranchFactory(code="PUN02")
    manager = UserFactory(role="Branch Manager", home_branch=BranchFactory(code="PUN03"))
    run = run_import("loans", [loan_row("LN-D1", "LEG1", "PUN01")], actor=manager)
    assert results(run)[2] == (
        S.REFUSED,
        "branch_code",
        "The row belongs to a branch outside yours.",
    )
    assert not LoanAccount.objects.exists()


# --- Mandates ---------------------------------------------------------------------------


def mandate_row(umrn: str, loan_number: str, **overrides) -> dict:
    return {
        "umrn": umrn,
        "loan_number": loan_number,
        "banking_partner_code": "sandbox",
        "bank_name": "State Bank of India",
        "account_number": "123456789012",
        "ifsc": "SBIN0001234",
        "max_amount": "15000",
        "start_date": "2026-01-01",
        "end_date": "2028-01-01",
        "status": "active",
        **overrides,
    }


def test_active_mandates_imported_with_their_presentations_scheduled():
    BankingPartnerFactory()
    loan = make_loan(disbursed_on=datetime.date.today())
    ops = UserFactory(role="Operations")
    second = make_loan(customer=loan.customer)
    run = run_import(
        "mandates",
        [
            mandate_row("UMRN0001", loan.loan_number),
            mandate_row("UMRN0002", second.loan_number, status="SUSPENDED"),
            mandate_row("UMRN0003", loan.loan_number),  # a second active one on the loan
            mandate_row("UMRN0004", loan.loan_number, ifsc="BAD"),
            mandate_row("UMRN0005", loan.loan_number, status="DRAFT"),
            mandate_row("UMRN0006", "NOPE"),
        ],
        actor=ops,
    )
    got = results(run)
    assert got[2][0] == got[3][0] == S.CREATED
    assert got[4][:2] == (S.REFUSED, "loan_number")
    assert "already has an active mandate" in got[4][2]
    assert got[5][:2] == (S.REFUSED, "ifsc")
    assert got[6][:2] == (S.REFUSED, "status")
    assert got[7][:2] == (S.REFUSED, "loan_number")
    active = Mandate.objects.get(umrn="UMRN0001")
    assert active.status == Mandate.Status.ACTIVE and active.created_by == ops
    assert active.transitions.get().remarks == "migrated, UMRN UMRN0001"
    assert ScheduledPresentation.objects.filter(mandate=active).count() == 12
    assert Mandate.objects.get(umrn="UMRN0002").status == Mandate.Status.SUSPENDED
    assert not ScheduledPresentation.objects.filter(mandate__umrn="UMRN0002").exists()
    again = run_import("mandates", [mandate_row("UMRN0001", loan.loan_number)], actor=ops)
    assert statuses(again) == [S.UNCHANGED]
    other = run_import(
        "mandates", [mandate_row("UMRN0001", loan.loan_number, max_amount="1")], actor=ops
    )
    assert results(other)[2][:2] == (S.REFUSED, "max_amount")


def test_mandates_need_the_user_they_are_made_by():
    with pytest.raises(ImportRefused, match="--as"):
        run_import("mandates", [mandate_row("UMRN1", "LN1")])


# --- The engine -------------------------------------------------------------------------


def test_a_dry_run_writes_nothing_but_reports_every_row():
    run = run_import("branches", [BRANCH, {**BRANCH, "code": "x"}], dry_run=True)
    assert run.dry_run and run.status == ImportRun.Status.DONE
    assert statuses(run) == [S.CREATED, S.REFUSED]
    assert not Branch.objects.exists() and not Area.objects.exists()
    assert not Region.objects.exists()
    assert not AuditMessage.objects.filter(ref=f"imports.importrun#{run.pk}").exists()


def test_a_dry_run_of_loans_leaves_no_loan_schedule_or_audit_row(book):
    before = AuditMessage.objects.count()
    run = run_import("loans", [loan_row("LN-E1", "LEG1", "PUN01")], dry_run=True)
    assert statuses(run) == [S.CREATED]
    assert not LoanAccount.objects.exists() and not Instalment.objects.exists()
    assert AuditMessage.objects.count() == before


def test_one_audit_event_a_real_run_with_its_counts():
    run = run_import("branches", [BRANCH, {**BRANCH, "code": "x"}])
    event = AuditMessage.objects.get(ref=f"imports.importrun#{run.pk}")
    changes = event.payload["changes"]
    assert changes["created"] == [None, 1] and changes["refused"] == [None, 1]
    assert changes["status"] == ["RUNNING", "DONE"]


def test_an_interrupted_run_resumes_after_its_last_committed_line(monkeypatch):
    monkeypatch.setattr(services, "CHUNK", 2)
    rows = [{**BRANCH, "code": f"B{n:02d}", "name": f"Branch {n}"} for n in range(1, 8)]
    content = csv_file("branches", rows)
    importer = IMPORTERS["branches"]
    original = importer.write
    written: list[str] = []

    def crash_at_b05(self, data):
        if data["code"] == "B05":
            raise RuntimeError("the worker died")
        written.append(data["code"])
        return original(self, data)

    monkeypatch.setattr(importer, "write", crash_at_b05)
    with pytest.raises(RuntimeError):
        run_import("branches", [], content=content)
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.RUNNING and run.last_line == 5  # B01-B04 committed
    assert "RuntimeError: the worker died" in run.error
    assert Branch.objects.count() == 4  # B05's chunk rolled back whole

    monkeypatch.setattr(importer, "write", original)
    monkeypatch.setattr(
        importer, "write", lambda self, data: written.append(data["code"]) or original(self, data)
    )
    resumed = run_import("branches", [], content=content)
    assert resumed.pk == run.pk and resumed.status == ImportRun.Status.DONE
    assert written == ["B01", "B02", "B03", "B04", "B05", "B06", "B07"]
    assert resumed.counts["created"] == 7 and resumed.total == 7
    assert list(resumed.results.values_list("line", flat=True)) == list(range(2, 9))
    assert Branch.objects.count() == 7


def test_an_excel_file_is_read_as_the_csv_is():
    run = run_import(
        "branches", [BRANCH], name="branches.xlsx", content=xlsx_file("branches", [BRANCH])
    )
    assert run.file_format == "XLSX" and statuses(run) == [S.CREATED]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("b.csv", b"code,name\nX,Y\n", "Missing column(s): state, area_code, region_code."),
        ("b.pdf", b"%PDF", "Upload a CSV file"),
        ("b.csv", csv_file("branches", []), "a header but no rows"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(name, content, message):
    with pytest.raises(ImportRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        run_import("branches", [], name=name, content=content)
    assert not Branch.objects.exists()


def test_an_unknown_kind_is_refused():
    with pytest.raises(ImportRefused, match="Unknown kind"):
        services.import_run(kind="x", file_name="x.csv", source=io.BytesIO(b"a\n"), actor=None)
    assert Group.objects.exists()  # the roles are there: only the import was refused
