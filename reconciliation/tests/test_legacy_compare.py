"""compare_legacy: the legacy system's end-of-day extract against this system's figures."""

import csv
import datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from openpyxl import Workbook

from approvals.services import approval_decide
from loans.models import Instalment, LoanAccount
from payments.services import payment_post_one, payment_reversal_request
from reconciliation.legacy_compare import COLUMNS, RESULT_HEADER
from tests.factories import BranchFactory, UserFactory, bounce_charge, make_loan, pay

pytestmark = pytest.mark.django_db

AS_OF = datetime.date(2026, 3, 10)  # instalments fell due on 5 February and 5 March


@pytest.fixture(autouse=True)
def _backdating(settings):
    settings.PAYMENTS_BACKDATE_DAYS = 3650  # payments on the fixed dates of these tests


def _posted(loan, amount, day) -> str:
    txn_id = pay(loan, amount, day=day)
    payment_post_one(txn_id=txn_id)
    return txn_id


def _figures(loan, *, paid_instalments=0, last_payment="", dpd):
    """The extract row of ``loan`` that agrees with a loan whose first ``paid_instalments``
    were paid in full and nothing else (no charges)."""
    schedule = list(Instalment.objects.filter(loan=loan).order_by("number"))
    principal = sum((i.principal_due for i in schedule[paid_instalments:]), Decimal("0.00"))
    interest = sum((i.interest_due for i in schedule[paid_instalments:]), Decimal("0.00"))
    return {
        "loan_number": loan.loan_number,
        "outstanding_principal": str(principal),
        "outstanding_interest": str(interest),
        "outstanding_charges": "0.00",
        "last_payment_date": last_payment,
        "dpd": str(dpd),
        "branch_code": loan.branch.code,
    }


def _csv(tmp_path, rows, *, header=COLUMNS, name="extract.csv"):
    path = tmp_path / name
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow([row.get(column, "") for column in header])
    return path


def _run(path, tmp_path, *, as_of=AS_OF):
    """(exit status, stdout, result rows)."""
    out, result = StringIO(), tmp_path / "result.csv"
    status = 0
    try:
        call_command(
            "compare_legacy", str(path), date=as_of.isoformat(), output=str(result), stdout=out
        )
    except SystemExit as exc:
        status = exc.code
    with result.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == RESULT_HEADER
    return status, out.getvalue(), rows[1:]


@pytest.fixture
def book():
    """Two branches: a loan that paid its first EMI on time, one that paid nothing, and
    one whose payment and bounce charge came after the date (not counted on it)."""
    pune, nashik = BranchFactory(code="PUN01"), BranchFactory(code="NSK01")
    paid = make_loan(branch=pune)
    paid.txn_id = _posted(paid, str(paid.emi_amount), datetime.date(2026, 2, 4))
    unpaid = make_loan(branch=pune)
    later = make_loan(branch=nashik)
    _posted(later, str(later.emi_amount), datetime.date(2026, 3, 12))
    bounce_charge(later)  # raised today: after the date
    return {"paid": paid, "unpaid": unpaid, "later": later}


def _agreeing_rows(book):
    return [
        _figures(book["paid"], paid_instalments=1, last_payment="2026-02-04", dpd=5),
        _figures(book["unpaid"], dpd=33),
        _figures(book["later"], dpd=33),
    ]


def test_an_extract_that_agrees_exits_0_with_an_empty_result(book, tmp_path):
    status, out, differences = _run(_csv(tmp_path, _agreeing_rows(book)), tmp_path)
    assert status == 0
    assert differences == []
    assert "3 loans in the extract: agree" in out
    assert "PUN01" in out and "NSK01" in out


def test_a_loan_disbursed_after_the_date_is_not_expected_in_the_extract(book, tmp_path):
    make_loan(branch=book["paid"].branch, disbursed_on=datetime.date(2026, 3, 11))
    status, _, differences = _run(_csv(tmp_path, _agreeing_rows(book)), tmp_path)
    assert (status, differences) == (0, [])


def test_planted_differences_of_each_kind_are_found(book, tmp_path):
    rows = _agreeing_rows(book)
    paid, unpaid, later = rows
    paid["outstanding_principal"] = str(Decimal(paid["outstanding_principal"]) + 100)
    paid["last_payment_date"] = "05-02-2026"  # DD-MM-YYYY: a day later than here
    unpaid["outstanding_interest"] = "1,23,456.50"
    unpaid["dpd"] = "34"
    later["outstanding_charges"] = "590.00"
    stranger = {**later, "loan_number": "LEG0000042", "branch_code": "OLD01"}
    extra = make_loan(branch=book["unpaid"].branch)  # open here, absent from the extract
    status, out, differences = _run(_csv(tmp_path, [paid, unpaid, later, stranger]), tmp_path)

    assert status == 1
    found = {(branch, loan, kind, name) for branch, loan, kind, name, *_ in differences}
    p, u, n = (book[k].loan_number for k in ("paid", "unpaid", "later"))
    assert found == {
        ("PUN01", p, "MISMATCH", "outstanding_principal"),
        ("PUN01", p, "MISMATCH", "last_payment_date"),
        ("PUN01", u, "MISMATCH", "outstanding_interest"),
        ("PUN01", u, "MISMATCH", "dpd"),
        ("NSK01", n, "MISMATCH", "outstanding_charges"),
        ("OLD01", "LEG0000042", "ONLY_IN_EXTRACT", ""),
        ("PUN01", extra.loan_number, "ONLY_HERE", ""),
    }
    by_field = {
        (loan, name): (legacy, ours, delta) for _, loan, _, name, legacy, ours, delta in differences
    }
    assert by_field[(p, "outstanding_principal")][2] == "100.00"
    assert by_field[(p, "last_payment_date")][:2] == ("2026-02-05", "2026-02-04")
    assert by_field[(u, "dpd")] == ("34", "33", "1")
    assert by_field[(n, "outstanding_charges")] == ("590.00", "0.00", "590.00")
    assert "7 differences" in out
    summary = {line.split()[0]: line.split()[1:6] for line in out.splitlines()[1:5]}
    assert summary["PUN01"] == ["2", "0", "2", "0", "1"]
    assert summary["NSK01"] == ["1", "0", "1", "0", "0"]
    assert summary["OLD01"] == ["0", "0", "0", "1", "0"]


def test_figures_are_those_at_the_end_of_the_date(book, tmp_path):
    """A day later the payment of 12 March counts and the loan is no longer 33 days late."""
    rows = _agreeing_rows(book)
    status, _, differences = _run(_csv(tmp_path, rows), tmp_path, as_of=datetime.date(2026, 3, 12))
    assert status == 1
    changed = {(loan, name) for _, loan, _, name, *_ in differences}
    later, unpaid = book["later"].loan_number, book["unpaid"].loan_number
    assert (later, "outstanding_principal") in changed
    assert (later, "last_payment_date") in changed
    assert (unpaid, "dpd") in changed  # 35 on the 12th


def test_a_payment_reversed_after_the_date_still_counts_on_it(book, tmp_path):
    loan = book["paid"]
    request = payment_reversal_request(
        txn_id=loan.txn_id,
        reason="Cheque returned",
        actor=UserFactory(role="Branch Manager", home_branch=loan.branch),
    )
    approval_decide(request_id=request.pk, approve=True, actor=UserFactory(role="Finance"))
    loan.refresh_from_db()
    assert loan.last_payment_date is None  # today it is as if never paid
    status, _, differences = _run(_csv(tmp_path, _agreeing_rows(book)), tmp_path)
    assert (status, differences) == (0, [])


def test_a_last_payment_known_only_to_the_loan_counts_until_a_later_posting(book, tmp_path):
    """A book loaded with its history has a last payment date but no posting for it."""
    loan = book["unpaid"]
    LoanAccount.objects.filter(pk=loan.pk).update(last_payment_date=datetime.date(2026, 1, 20))
    rows = _agreeing_rows(book)
    rows[1]["last_payment_date"] = "2026-01-20"
    status, _, differences = _run(_csv(tmp_path, rows), tmp_path)
    assert (status, differences) == (0, [])
    # on a date before that payment, the loan had none yet
    rows[1]["last_payment_date"] = "2026-01-20"
    _, _, differences = _run(_csv(tmp_path, rows), tmp_path, as_of=datetime.date(2026, 1, 19))
    assert (loan.loan_number, "last_payment_date", "2026-01-20", "") in {
        (number, name, legacy, ours) for _, number, _, name, legacy, ours, _ in differences
    }


def test_an_xlsx_extract_is_read_as_a_csv_one(book, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Loan Number", "Outstanding Principal", "Outstanding Interest",
                  "Outstanding Charges", "Last Payment Date", "DPD"])  # fmt: skip
    for row in _agreeing_rows(book):
        day = row["last_payment_date"]
        sheet.append([
            row["loan_number"], Decimal(row["outstanding_principal"]),
            Decimal(row["outstanding_interest"]), 0,
            datetime.datetime.fromisoformat(day) if day else None, int(row["dpd"]),
        ])  # fmt: skip
    path = tmp_path / "extract.xlsx"
    workbook.save(path)
    status, _, differences = _run(path, tmp_path)
    assert (status, differences) == (0, [])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outstanding_interest": "12.5O"}, "outstanding_interest: '12.5O' is not an amount"),
        ({"outstanding_principal": "10.005"}, "'10.005' is not an amount in rupees and paise"),
        ({"last_payment_date": "31-02-2026"}, "row 3, last_payment_date: '31-02-2026' is not"),
        ({"dpd": "-4"}, "row 3, dpd: '-4' is not a number of days"),
        ({"dpd": ""}, "row 3, dpd: empty"),
        ({"loan_number": ""}, "row 3, loan_number: empty"),
    ],
)  # fmt: skip
def test_a_bad_cell_exits_2_naming_its_row_and_column(book, tmp_path, change, message):
    rows = _agreeing_rows(book)
    rows[1].update(change)
    _refused(_csv(tmp_path, rows), tmp_path, message)


def test_a_loan_twice_in_the_extract_is_refused(book, tmp_path):
    rows = _agreeing_rows(book)
    _refused(
        _csv(tmp_path, [*rows, rows[0]]),
        tmp_path,
        f"row 5, loan_number: {book['paid'].loan_number} is in the extract twice (also row 2)",
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("extract.csv", b"", "The file is empty"),
        ("extract.csv", ",".join(COLUMNS).encode() + b"\n", "a header but no rows"),
        ("extract.csv", b"loan_number,dpd\nLN1,3\n", "Missing column(s): outstanding_principal"),
        ("extract.pdf", b"%PDF-1.4", "Upload a CSV file (.csv) or an Excel workbook"),
        ("extract.xlsx", b"loan_number\n", "not a valid Excel workbook"),
    ],
)
def test_a_bad_file_exits_2_with_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    _refused(path, tmp_path, message)


def test_a_missing_file_or_a_bad_date_exits_2(tmp_path):
    _refused(tmp_path / "absent.csv", tmp_path, "No such file or directory")
    path = _csv(tmp_path, [])
    with pytest.raises(CommandError) as refused:
        call_command("compare_legacy", str(path), date="10-03-2026", stdout=StringIO())
    assert refused.value.returncode == 2
    assert str(refused.value) == "not a date (YYYY-MM-DD): '10-03-2026'"


def _refused(path, tmp_path, message):
    result = tmp_path / "result.csv"
    with pytest.raises(CommandError) as refused:
        call_command(
            "compare_legacy",
            str(path),
            date=AS_OF.isoformat(),
            output=str(result),
            stdout=StringIO(),
        )
    assert refused.value.returncode == 2
    text = str(refused.value)
    assert "\n" not in text
    assert message in text
    assert not result.exists() and not (tmp_path / "result.csv.part").exists()
