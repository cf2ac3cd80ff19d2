import threading
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection
from django.utils import timezone

from loans.models import LoanAccount
from payments.services import business_date_for, payments_post_due
from reconciliation import services
from reconciliation.exceptions import (
    AlreadyDecided,
    BusinessDateOpen,
    DepositRejected,
    InvalidTransition,
    MakerCannotCheck,
    NotAllowed,
    ReportNotFound,
    StatementAlreadyImported,
    StatementRejected,
)
from reconciliation.models import Dbs, Dcr, Deposit, LateArrival, StatementLine, StatementUpload
from tests.factories import (
    AreaFactory,
    UserFactory,
    branch_with_loan,
    collection_account,
    days_ago,
    deposit,
    make_loan,
    pay,
)

pytestmark = pytest.mark.django_db

D = Decimal


def _lines(dcr, dimension):
    return {line.key: (line.count, line.amount) for line in dcr.lines.filter(dimension=dimension)}


def test_dcr_totals_by_mode_and_collector_with_counts_and_not_collected_apart():
    branch, loan = branch_with_loan()
    day = days_ago(1)
    cash_a = pay(loan, "1000.00", collector="Agent A", day=day)
    cash_b = pay(loan, "500.50", collector="Agent B", day=day)
    upi = pay(loan, "250.00", mode="UPI", collector="Agent A", day=day)
    payments_post_due()  # these three are POSTED; RECEIVED and POSTED both count
    closed_loan = make_loan(branch=branch)
    failed = pay(closed_loan, "700.00", day=day)
    LoanAccount.objects.filter(pk=closed_loan.pk).update(status="CLOSED")
    payments_post_due()  # this one ends FAILED
    pay(loan, "99.00", day=days_ago(2))  # another date
    _, other_loan = branch_with_loan()
    pay(other_loan, "77.00", day=day)  # another branch

    dcr = services.dcr_build(branch_id=branch.pk, business_date=day)

    assert dcr.status == "DRAFT" and not dcr.is_provisional
    assert (dcr.collected_count, dcr.collected_amount) == (3, D("1750.50"))
    assert dcr.cash_amount == D("1500.50")
    assert (dcr.excluded_count, dcr.excluded_amount) == (1, D("700.00"))
    assert _lines(dcr, "MODE") == {"CASH": (2, D("1500.50")), "UPI": (1, D("250.00"))}
    assert _lines(dcr, "COLLECTOR") == {"Agent A": (2, D("1250.00")), "Agent B": (1, D("500.50"))}
    assert _lines(dcr, "EXCLUDED") == {"FAILED": (1, D("700.00"))}
    assert dcr.txn_ids == sorted([cash_a, cash_b, upi])
    assert dcr.excluded_txn_ids == [failed]


def test_rebuilding_gives_identical_figures():
    branch, loan = branch_with_loan()
    for amount, mode in [("10.00", "CASH"), ("20.25", "UPI"), ("30.00", "CHEQUE")]:
        pay(loan, amount, mode=mode)

    def snapshot():
        dcr = services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
        lines = sorted(dcr.lines.values_list("dimension", "key", "count", "amount"))
        return dcr.collected_count, dcr.collected_amount, dcr.cash_amount, dcr.txn_ids, lines

    first = snapshot()
    assert snapshot() == first
    assert Dcr.objects.filter(branch=branch).count() == 1


def test_a_submitted_dcr_is_never_rewritten_and_late_arrivals_are_recorded_once():
    branch, loan = branch_with_loan()
    day = days_ago(1)
    pay(loan, "1000.00", day=day)
    dcr = services.dcr_build(branch_id=branch.pk, business_date=day)
    services.dcr_submit(dcr_id=dcr.pk, actor=UserFactory(role="Branch Manager", home_branch=branch))
    late = pay(loan, "300.00", mode="UPI", collector="Late agent", day=day)

    for _ in range(2):  # the tick reads it again and again
        report = services.dcr_build_many(pairs=[(branch.pk, day)])
        assert report.frozen == 1 and report.written == 0
    dcr.refresh_from_db()
    assert (dcr.status, dcr.collected_count, dcr.collected_amount) == ("SUBMITTED", 1, D("1000"))
    arrivals = list(LateArrival.objects.filter(dcr=dcr))
    assert [(a.txn_id, a.kind, a.amount, a.mode) for a in arrivals] == [
        (late, "NEW", D("300.00"), "UPI")
    ]

    services.dcr_approve(
        dcr_id=dcr.pk, actor=UserFactory(role="Area Manager", home_area=branch.area)
    )
    services.dcr_build_many(pairs=[(branch.pk, day)])
    dcr.refresh_from_db()
    assert (dcr.status, dcr.collected_amount) == ("APPROVED", D("1000.00"))


def test_a_returned_dcr_is_rebuilt_with_its_late_arrivals_and_resubmitted():
    branch, loan = branch_with_loan()
    day = days_ago(1)
    pay(loan, "100.00", day=day)
    maker, checker = (
        UserFactory(role="Branch Manager", home_branch=branch),
        UserFactory(role="Area Manager", home_area=branch.area),
    )
    dcr = services.dcr_build(branch_id=branch.pk, business_date=day)
    services.dcr_submit(dcr_id=dcr.pk, actor=maker)
    pay(loan, "50.00", day=day)
    services.dcr_build(branch_id=branch.pk, business_date=day)
    services.dcr_return(dcr_id=dcr.pk, actor=checker, remarks="Receipt 50 missing")
    dcr = services.dcr_submit(dcr_id=dcr.pk, actor=maker)
    assert (dcr.status, dcr.collected_amount) == ("SUBMITTED", D("150.00"))
    assert not LateArrival.objects.filter(dcr=dcr, resolved_at__isnull=True).exists()
    moves = list(dcr.history.values_list("from_status", "to_status"))
    assert moves == [
        ("DRAFT", "SUBMITTED"),
        ("SUBMITTED", "RETURNED"),
        ("RETURNED", "DRAFT"),
        ("DRAFT", "SUBMITTED"),
    ]


def test_dcr_workflow_allowed_and_refused_moves():
    branch, loan = branch_with_loan()
    pay(loan, "100.00")
    pay(loan, "100.00", day=days_ago(0))
    dcr = services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    today = services.dcr_build(
        branch_id=branch.pk,
        business_date=business_date_for(branch, timezone.now()),
    )
    maker = UserFactory(
        role="Area Manager", home_area=branch.area
    )  # may submit and approve, but not their own
    checker = UserFactory(role="Area Manager", home_area=branch.area)
    branch_staff = UserFactory(role="Branch Staff", home_branch=branch)

    with pytest.raises(NotAllowed):
        services.dcr_submit(dcr_id=dcr.pk, actor=branch_staff)
    with pytest.raises(BusinessDateOpen):
        services.dcr_submit(dcr_id=today.pk, actor=maker)
    with pytest.raises(InvalidTransition):
        services.dcr_approve(dcr_id=dcr.pk, actor=checker)  # still a draft
    services.dcr_submit(dcr_id=dcr.pk, actor=maker)
    with pytest.raises(InvalidTransition):
        services.dcr_submit(dcr_id=dcr.pk, actor=maker)
    with pytest.raises(MakerCannotCheck):
        services.dcr_approve(dcr_id=dcr.pk, actor=maker)
    with pytest.raises(NotAllowed):
        services.dcr_approve(
            dcr_id=dcr.pk, actor=UserFactory(role="Branch Manager", home_branch=branch)
        )  # no approve_dcr
    with pytest.raises(NotAllowed) as refused:
        services.dcr_return(dcr_id=dcr.pk, actor=checker, remarks="  ")
    assert refused.value.code == "remarks_required"
    services.dcr_approve(dcr_id=dcr.pk, actor=checker, remarks="ok")
    with pytest.raises(AlreadyDecided) as again:
        services.dcr_return(
            dcr_id=dcr.pk,
            actor=UserFactory(role="Area Manager", home_area=branch.area),
            remarks="late",
        )
    assert again.value.code == "already_decided"
    assert checker.username in str(again.value)
    dcr.refresh_from_db()
    assert (dcr.status, dcr.decided_by, dcr.submitted_by) == ("APPROVED", checker, maker)


def test_an_approver_of_another_area_cannot_see_the_dcr():
    branch, loan = branch_with_loan()
    pay(loan)
    dcr = services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    services.dcr_submit(dcr_id=dcr.pk, actor=UserFactory(role="Branch Manager", home_branch=branch))
    with pytest.raises(ReportNotFound):
        services.dcr_approve(
            dcr_id=dcr.pk, actor=UserFactory(role="Area Manager", home_area=AreaFactory())
        )


# --- DBS -----------------------------------------------------------------------------------


def test_dbs_arithmetic_and_every_flag():
    branch, loan = branch_with_loan(cash_in_hand_limit=D("1500.00"))
    account = collection_account()
    # the day before: 3000 collected in cash, 2000 deposited: closing 1000
    pay(loan, "3000.00", day=days_ago(2))
    services.dcr_build(branch_id=branch.pk, business_date=days_ago(2))
    deposit(branch, account, "2000.00", slip="S-0", day=days_ago(2))
    # the day: 1500 cash and 200 UPI collected; 400 deposited with a slip, 100 without
    pay(loan, "1500.00", day=days_ago(1))
    pay(loan, "200.00", mode="UPI", day=days_ago(1))
    dcr = services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    deposit(branch, account, "400.00", slip="S-1", day=days_ago(1))
    deposit(branch, account, "100.00", day=days_ago(1))
    other_branch, _ = branch_with_loan()
    deposit(other_branch, account, "400.00", slip="S-1", day=days_ago(1))  # same slip, same account

    dbs = Dbs.objects.get(branch=branch, business_date=days_ago(1))
    assert dbs.opening_cash == D("1000.00")
    assert dbs.cash_collected == D("1500.00")
    assert (dbs.deposits_total, dbs.deposit_count) == (D("500.00"), 2)
    assert dbs.closing_cash == D("2000.00")
    assert set(dbs.flag_codes) == {
        "CASH_OVER_LIMIT",
        "DEPOSIT_WITHOUT_SLIP",
        "SLIP_USED_TWICE",
        "DCR_NOT_APPROVED",
    }

    services.dcr_submit(dcr_id=dcr.pk, actor=UserFactory(role="Branch Manager", home_branch=branch))
    services.dcr_approve(
        dcr_id=dcr.pk, actor=UserFactory(role="Area Manager", home_area=branch.area)
    )
    dbs.refresh_from_db()
    assert "DCR_NOT_APPROVED" not in dbs.flag_codes


def test_dbs_negative_cash_is_flagged_and_workflow_is_the_dcr_one():
    branch, loan = branch_with_loan()
    pay(loan, "100.00")
    services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    deposit(branch, collection_account(), "300.00", slip="N-1")
    dbs = Dbs.objects.get(branch=branch, business_date=days_ago(1))
    assert dbs.closing_cash == D("-200.00")
    assert "CASH_NEGATIVE" in dbs.flag_codes

    maker, checker = (
        UserFactory(role="Branch Manager", home_branch=branch),
        UserFactory(role="Finance"),
    )
    with pytest.raises(NotAllowed):
        services.dbs_submit(
            dbs_id=dbs.pk, actor=UserFactory(role="Branch Staff", home_branch=branch)
        )
    services.dbs_submit(dbs_id=dbs.pk, actor=maker)
    with pytest.raises(NotAllowed):
        services.dbs_approve(
            dbs_id=dbs.pk, actor=UserFactory(role="Area Manager", home_area=branch.area)
        )  # not finance
    with pytest.raises(DepositRejected):  # the date's DBS is submitted: deposits are frozen
        deposit(branch, collection_account(), "5.00", slip="N-2")
    services.dbs_return(dbs_id=dbs.pk, actor=checker, remarks="Slip N-1 is for 30.00")
    services.dbs_submit(dbs_id=dbs.pk, actor=maker)
    services.dbs_approve(dbs_id=dbs.pk, actor=checker)
    dbs.refresh_from_db()
    assert dbs.status == "APPROVED"


# --- Deposits: bad input ----------------------------------------------------------------


PDF = b"%PDF-1.4\n%fake but well-formed enough\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"amount": D("-5.00")}, "amount", "more than zero"),
        ({"amount": D("0.00")}, "amount", "more than zero"),
        ({"deposit_date": days_ago(-1)}, "deposit_date", "future"),
        ({"slip_number": "DUP-1"}, "slip_number", "already used"),
        ({"slip_scan": SimpleUploadedFile("slip.pdf", b"GIF89a...")}, "slip_scan", "not a real"),
        ({"slip_scan": SimpleUploadedFile("slip.exe", PDF)}, "slip_scan", "PDF, JPEG or PNG"),
        (
            {"slip_scan": SimpleUploadedFile("slip.png", PNG + b"\x00" * (5 * 1024 * 1024))},
            "slip_scan",
            "at most 5 MB",
        ),
    ],
)
def test_bad_deposits_are_refused_with_the_field(changes, field, text):
    branch, _ = branch_with_loan()
    account = collection_account()
    deposit(branch, account, "10.00", slip="DUP-1")
    fields = {
        "actor": UserFactory(role="Branch Staff", home_branch=branch),
        "branch_id": branch.pk,
        "deposit_date": days_ago(0),
        "collection_account_id": account.pk,
        "amount": D("100.00"),
        "slip_number": "NEW-1",
        **changes,
    }
    with pytest.raises(DepositRejected) as refused:
        services.deposit_record(**fields)
    assert refused.value.field == field
    assert text in str(refused.value)
    assert Deposit.objects.count() == 1


def test_a_deposit_with_a_scan_is_stored_and_staff_of_another_branch_are_refused(
    settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    branch, _ = branch_with_loan()
    account = collection_account()
    saved = services.deposit_record(
        actor=UserFactory(role="Branch Staff", home_branch=branch),
        branch_id=branch.pk,
        deposit_date=days_ago(0),
        collection_account_id=account.pk,
        amount=D("100.00"),
        slip_number="SCAN-1",
        slip_scan=SimpleUploadedFile("my slip.pdf", PDF, content_type="application/pdf"),
    )
    assert saved.slip_scan.name.startswith(f"deposit_slips/{branch.pk}/")
    assert saved.slip_scan.name.endswith(".pdf")
    assert (tmp_path / saved.slip_scan.name).read_bytes() == PDF
    other, _ = branch_with_loan()
    with pytest.raises(NotAllowed):
        services.deposit_record(
            actor=UserFactory(role="Branch Staff", home_branch=other),
            branch_id=branch.pk,
            deposit_date=days_ago(0),
            collection_account_id=account.pk,
            amount=D("1.00"),
        )


# --- Bank statements --------------------------------------------------------------------


def _csv(text: str, name="statement.csv"):
    return SimpleUploadedFile(name, text.encode())


def test_a_statement_matches_deposits_by_slip_and_amount_and_shows_both_sides():
    from reconciliation.selectors import statement_line_notes, statement_unmatched_deposits

    branch, _ = branch_with_loan()
    account = collection_account()
    matched = deposit(branch, account, "1200.00", slip="A-1")
    deposit(branch, account, "800.00", slip="A-2")  # the bank saw 80.00
    missing = deposit(branch, account, "50.00", slip="A-3")  # not in the statement
    day = days_ago(1).isoformat()
    upload = services.statement_upload(
        collection_account_id=account.pk,
        file=_csv(
            "Date,Narration,Reference,Debit,Credit,Balance\n"
            f'{day},CASH DEP A-1,A-1,,"1,200.00",1200.00\n'
            f"{day},CASH DEP A-2,A-2,,80.00,1280.00\n"
            f"{day},TRANSFER OUT,,500.00,,780.00\n"
            f"{day},CASH DEP,ZZ-9,,10.00,790.00\n"
        ),
        actor=UserFactory(role="Finance"),
    )
    assert upload.line_count == 3  # the debit line is skipped
    lines = {line.reference: line for line in upload.lines.all()}
    assert lines["A-1"].matched_deposit == matched
    assert lines["A-2"].matched_deposit is None
    notes = statement_line_notes(upload)
    assert "800.00" in notes[lines["A-2"].pk]
    assert notes[lines["ZZ-9"].pk] == "no deposit with this slip number"
    unmatched = statement_unmatched_deposits(upload)
    assert missing in unmatched and matched not in unmatched


def test_a_statement_with_wrong_columns_is_refused_whole():
    with pytest.raises(StatementRejected) as refused:
        services.statement_upload(
            collection_account_id=collection_account().pk,
            file=_csv("Date,Description,Amount\n2026-01-02,CASH,100.00\n"),
            actor=UserFactory(role="Finance"),
        )
    [(line, message)] = refused.value.errors
    assert line == 1
    assert "reference, credit" in message
    assert not StatementUpload.objects.exists()


def test_broken_rows_are_each_reported_with_their_line_and_nothing_is_imported():
    text = (
        "date,narration,slip number,credit\n"
        "2026-01-02,OK,S1,100.00\n"
        "2026-13-45,BAD DATE,S2,100.00\n"
        "\n"
        "2026-01-02,BAD AMOUNT,S3,ten\n"
        "2026-01-02,TOO FEW,S4\n"
        "2026-01-02,NEGATIVE,S5,-5.00\n"
        "2026-01-02,OK AGAIN,S6,5.00\n"
    )
    with pytest.raises(StatementRejected) as refused:
        services.statement_upload(
            collection_account_id=collection_account().pk,
            file=_csv(text),
            actor=UserFactory(role="Finance"),
        )
    lines = [line for line, _ in refused.value.errors]
    assert lines == [3, 5, 6, 7]
    messages = dict(refused.value.errors)
    assert "not a date" in messages[3]
    assert "not an amount" in messages[5]
    assert "found 3" in messages[6]
    assert "more than zero" in messages[7]
    assert not StatementUpload.objects.exists() and not StatementLine.objects.exists()


def test_only_finance_may_upload_statements():
    branch, _ = branch_with_loan()
    with pytest.raises(NotAllowed):
        services.statement_upload(
            collection_account_id=collection_account().pk,
            file=_csv("date,narration,reference,credit\n2026-01-02,X,S1,1.00\n"),
            actor=UserFactory(role="Branch Manager", home_branch=branch),
        )


def test_a_nul_in_a_statement_cell_is_a_line_error_and_nothing_is_imported():
    text = (
        "date,narration,reference,credit\n"
        "2026-01-02,OK,S1,100.00\n"
        "2026-01-02,CASH\x00DEP,S2,100.00\n"
        "2026-01-02,OK,S3\x00,5.00\n"
    )
    with pytest.raises(StatementRejected) as refused:
        services.statement_upload(
            collection_account_id=collection_account().pk,
            file=_csv(text),
            actor=UserFactory(role="Finance"),
        )
    assert [line for line, _ in refused.value.errors] == [3, 4]
    assert all("NUL" in message for _, message in refused.value.errors)
    assert not StatementUpload.objects.exists()


@pytest.mark.parametrize(
    ("cells", "problem"),
    [
        ("2026-01-02,X,S1,\u0661\u0665\u0660\u0660", "not an amount"),  # Arabic-Indic digits
        ("2026-01-02,X,S1,\uff11\uff15\uff10\uff10.00", "not an amount"),  # full-width digits
        ("2026-01-02,X,S1,\u0967\u096b\u0966\u0966", "not an amount"),  # Devanagari digits
        ("2026-01-02,X,S1,1e3", "not an amount"),
        ("\u0662\u0660\u0662\u0666-01-02,X,S1,1500.00", "not a date"),
        ("2026-01-02,X,S\u0661,1500.00", "must be ascii"),
    ],
)
def test_statement_amounts_dates_and_references_take_ascii_digits_only(cells, problem):
    with pytest.raises(StatementRejected) as refused:
        services.statement_upload(
            collection_account_id=collection_account().pk,
            file=_csv(f"date,narration,reference,credit\n{cells}\n"),
            actor=UserFactory(role="Finance"),
        )
    [(line, message)] = refused.value.errors
    assert line == 2 and problem in message
    assert not StatementUpload.objects.exists()


STATEMENT = "date,narration,reference,credit\n2026-01-02,CASH DEP,S1,100.00\n"


def test_the_same_statement_file_is_refused_for_its_account_naming_the_earlier_upload():
    account, other = collection_account(), collection_account(number="999988887777")
    user = UserFactory(role="Finance")
    first = services.statement_upload(
        collection_account_id=account.pk, file=_csv(STATEMENT, "jan.csv"), actor=user
    )
    with pytest.raises(StatementAlreadyImported) as refused:
        services.statement_upload(
            collection_account_id=account.pk, file=_csv(STATEMENT, "jan-again.csv"), actor=user
        )
    assert refused.value.code == "duplicate_statement" and refused.value.field == "file"
    assert "jan.csv" in str(refused.value) and f"#{first.pk}" in str(refused.value)
    assert user.get_username() in str(refused.value)
    assert StatementUpload.objects.filter(collection_account=account).count() == 1
    # the same file for another account, and another file for this one, are imported
    services.statement_upload(collection_account_id=other.pk, file=_csv(STATEMENT), actor=user)
    services.statement_upload(
        collection_account_id=account.pk, file=_csv(STATEMENT + "\n"), actor=user
    )
    assert StatementUpload.objects.count() == 3


def test_the_database_refuses_a_second_upload_of_one_file_for_an_account():
    account = collection_account()
    StatementUpload.objects.create(collection_account=account, file_name="a", content_sha256="f")
    with pytest.raises(IntegrityError):
        StatementUpload.objects.create(
            collection_account=account, file_name="b", content_sha256="f"
        )


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_uploads_of_one_file_import_it_once():
    account, user = collection_account(), UserFactory(role="Finance")
    barrier = threading.Barrier(2)
    results: list = [None, None]

    def upload(index: int) -> None:
        try:
            barrier.wait()
            results[index] = services.statement_upload(
                collection_account_id=account.pk, file=_csv(STATEMENT), actor=user
            )
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    refused = [r for r in results if isinstance(r, StatementAlreadyImported)]
    imported = [r for r in results if isinstance(r, StatementUpload)]
    assert len(refused) == 1 and len(imported) == 1, results
    assert StatementUpload.objects.filter(collection_account=account).count() == 1
    assert StatementLine.objects.filter(upload__collection_account=account).count() == 1
