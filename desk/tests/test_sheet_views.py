"""The collection sheet's page, print view and downloads, as each role gets them; the
collection officer's assignment on the loan."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from loans.models import LoanAccount
from loans.services import CollectionOfficerRefused, loan_update
from tests.factories import UserFactory, active_mandate, make_loan, pay

from .sheet_data import build_sheet, co_borrow, set_dues

pytestmark = pytest.mark.django_db

URL = reverse("desk:sheet")


@pytest.fixture
def sheet(world):
    return build_sheet(world)


def login(client, user):
    client.force_login(user)
    return client


def test_staff_see_their_branchs_sheet_with_totals_collect_links_and_receipts(client, world, sheet):
    pay(sheet.due, "5000.00", day=sheet.day, principal=world.users["BS"])
    login(client, world.users["BS"])

    response = client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    for loan in (sheet.due, sheet.overdue, sheet.paid):
        assert loan.loan_number in html
    for loan in (sheet.not_due, sheet.closed, sheet.near_due):
        assert loan.loan_number not in html
    assert 'id="sheet-count">3<' in html
    assert "₹10,090.00" in html and "₹5,090.00" in html  # amount due, arrears
    collect = reverse("desk:collect")
    assert f"{collect}?loan={sheet.overdue.loan_number}&amp;amount=5090.00" in html
    # The loan collected today shows its receipt (a link to find it), not a Collect button.
    assert f"{collect}?loan={sheet.due.loan_number}" not in html
    assert f"{reverse('desk:receipt_find')}?number=RCPT-" in html
    assert "Asha Kulkarni" in html and sheet.due.customer.mobile in html  # in full: for calling


def test_a_branch_user_cannot_ask_for_another_branch(client, world, sheet):
    login(client, world.users["BS"])

    html = client.get(URL, {"branch": world.branches["near"].pk}).content.decode()

    assert sheet.due.loan_number in html  # still their own branch's sheet
    assert sheet.near_due.loan_number not in html


def test_an_area_manager_picks_a_branch_of_their_area_only(client, world, sheet):
    login(client, world.users["AM"])
    near, far = world.branches["near"], world.branches["far"]

    picked = client.get(URL, {"branch": near.pk}).content.decode()
    assert sheet.near_due.loan_number in picked and sheet.due.loan_number not in picked

    refused = client.get(URL, {"branch": far.pk})
    assert refused.status_code == 200
    assert "Select a valid choice" in refused.content.decode()
    assert 'id="sheet-table"' not in refused.content.decode()

    wrong_area = client.get(URL, {"area": far.area_id, "branch": near.pk}).content.decode()
    assert "Select a valid choice" in wrong_area  # far's area is not theirs

    unpicked = client.get(URL).content.decode()
    assert 'id="sheet-pick-branch"' in unpicked and 'id="sheet-table"' not in unpicked


def test_head_office_filters_by_area_then_branch(client, world, sheet):
    login(client, world.users["OP"])
    own, far = world.branches["own"], world.branches["far"]

    refused = client.get(URL, {"area": far.area_id, "branch": own.pk}).content.decode()
    assert f"{own.code} is not in" in refused and 'id="sheet-table"' not in refused

    shown = client.get(URL, {"area": own.area_id, "branch": own.pk}).content.decode()
    assert sheet.due.loan_number in shown


def test_a_bad_date_or_bucket_is_a_field_message(client, world, sheet):
    login(client, world.users["BS"])

    for params in ({"date": "2026-13-45"}, {"bucket": "WORST"}, {"collector": "abc"}):
        response = client.get(URL, params)
        assert response.status_code == 200
        html = response.content.decode()
        assert "errornote" in html and 'id="sheet-table"' not in html, params


def test_csv_download_has_every_row_of_the_filtered_sheet_and_no_formula(client, world, sheet):
    set_dues(sheet.overdue, next_due=sheet.day, dpd=45, overdue=("3000.00", "1500.00", "590.00"))
    co_borrow(sheet.overdue, "=HYPERLINK(1)")
    pay(sheet.due, "5000.00", day=sheet.day, principal=world.users["BS"])
    login(client, world.users["BS"])

    response = client.get(URL, {"format": "csv"})

    assert response["Content-Disposition"].endswith(
        f'collection-sheet-{world.branches["own"].code}-{sheet.day:%Y%m%d}.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["Loan number", "Customer", "Mobile"]
    body = {row[0]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert list(body) == [sheet.overdue.loan_number, sheet.due.loan_number, sheet.paid.loan_number]
    overdue = body[sheet.overdue.loan_number]
    assert overdue["Co-borrowers"] == "'=HYPERLINK(1)"  # text, never a formula
    assert (overdue["Amount due"], overdue["Arrears"], overdue["DPD"]) == (
        "10090.00",
        "5090.00",
        "45",
    )
    assert overdue["Bucket"] == "SMA-1 (31-60)"
    assert body[sheet.due.loan_number]["Receipt numbers"].startswith("RCPT-")
    assert body[sheet.due.loan_number]["Collected today"] == "5000.00"

    bucket = client.get(URL, {"format": "csv", "bucket": "SMA1"})
    assert len(list(csv.reader(io.StringIO(bucket.content.decode())))) == 2


def test_excel_download_keeps_numbers_and_dates(client, world, sheet):
    login(client, world.users["BS"])

    response = client.get(URL, {"format": "xlsx"})

    sheet_xlsx = load_workbook(io.BytesIO(response.content)).active
    header = [cell.value for cell in sheet_xlsx[1]]
    rows = [
        dict(zip(header, [c.value for c in row], strict=True))
        for row in sheet_xlsx.iter_rows(min_row=2)
    ]
    assert [row["Loan number"] for row in rows] == [
        sheet.overdue.loan_number,
        sheet.due.loan_number,
        sheet.paid.loan_number,
    ]
    assert Decimal(str(rows[0]["Amount due"])) == Decimal("5090.00")
    assert rows[1]["Next due date"].date() == sheet.day
    assert rows[1]["Customer"] == "Asha Kulkarni"


def test_print_view_has_every_row_and_no_admin_chrome(client, world, sheet):
    login(client, world.users["BS"])

    html = client.get(URL, {"print": "1"}).content.decode()

    assert "size: A4 landscape" in html
    assert 'id="header"' not in html and "nav-sidebar" not in html
    for loan in (sheet.due, sheet.overdue, sheet.paid):
        assert loan.loan_number in html


def _more_rows(world, sheet, n):
    """``n`` more due loans at ``own``, each with a co-borrower and an active mandate."""
    for i in range(n):
        loan = set_dues(make_loan(branch=world.branches["own"]), next_due=sheet.day)
        co_borrow(loan, f"Co {i}")
        active_mandate(loan, world.people, account_number=f"5000000000{i:02d}")


@pytest.mark.parametrize("rows", [4, 8])
def test_the_page_takes_the_same_queries_for_n_and_2n_rows(
    client, world, sheet, rows, django_assert_num_queries
):
    _more_rows(world, sheet, rows - 3)
    login(client, world.users["BS"])
    client.get(URL)  # the session and the sidebar's caches

    # the user, permissions 2, auditor, branch, officers, totals 3, the page (its rows'
    # co-borrowers and mandate in it)
    with django_assert_num_queries(10):
        response = client.get(URL)

    assert response.content.decode().count('class="sheet-row') == rows


def test_head_office_picking_a_branch_takes_as_few_queries_as_the_branch(
    client, world, sheet, django_assert_num_queries
):
    login(client, world.users["OP"])
    query = {"branch": world.branches["own"].pk}
    client.get(URL, query)  # the session and the sidebar's caches

    # the user, permissions 2, the user's branches with their areas (both lists and the
    # choice), officers, totals 3, the page
    with django_assert_num_queries(9):
        response = client.get(URL, query)

    html = response.content.decode()
    assert sheet.due.loan_number in html
    assert f'<option value="{world.branches["own"].pk}" selected>' in html


def test_the_branch_manager_assigns_a_collection_officer_of_the_branch_only(world, sheet):
    manager, staff = world.users["BM"], world.users["BS"]
    stranger = UserFactory(role="Branch Staff", home_branch=world.branches["near"])

    loan_update(loan_id=sheet.due.pk, actor=manager, collection_officer=staff)
    assert LoanAccount.objects.get(pk=sheet.due.pk).collection_officer == staff

    with pytest.raises(CollectionOfficerRefused, match="user of the loan's branch"):
        loan_update(loan_id=sheet.due.pk, actor=manager, collection_officer=stranger)
    with pytest.raises(CollectionOfficerRefused, match="Only the branch manager"):
        loan_update(loan_id=sheet.due.pk, actor=staff, collection_officer=None)
    assert LoanAccount.objects.get(pk=sheet.due.pk).collection_officer == staff


def test_the_loan_page_offers_the_branchs_staff_to_the_manager_only(client, world, sheet):
    change = reverse("admin:loans_loanaccount_change", args=[sheet.due.pk])
    stranger = UserFactory(
        role="Branch Staff", home_branch=world.branches["near"], first_name="Zubin"
    )
    world.users["BS"].first_name = "Kavita"
    world.users["BS"].save()

    manager_page = login(client, world.users["BM"]).get(change).content.decode()
    assert 'name="collection_officer"' in manager_page
    assert "Kavita" in manager_page and stranger.first_name not in manager_page

    staff_page = login(client, world.users["BS"]).get(change).content.decode()
    assert 'name="collection_officer"' not in staff_page
