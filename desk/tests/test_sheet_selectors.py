"""The collection sheet's reads: which loans, their figures, the filters, the totals,
the scoping, the current mandate and the day's receipts."""

import datetime
from decimal import Decimal

import pytest

from desk.sheet_selectors import (
    UNASSIGNED,
    DayCollections,
    SheetBranchNotFound,
    SheetFilters,
    day_collections,
    sheet_branches,
    sheet_loans,
    sheet_rows,
    sheet_totals,
)
from mandates.models import Mandate
from tests.factories import UserFactory, active_mandate, draft_mandate, pay

from .sheet_data import build_sheet, co_borrow, set_dues

pytestmark = pytest.mark.django_db


@pytest.fixture
def sheet(world):
    return build_sheet(world)


def filters(world, sheet, **kw) -> SheetFilters:
    kw.setdefault("branch_id", world.branches["own"].pk)
    kw.setdefault("business_date", sheet.day)
    return SheetFilters(**kw)


def numbers(loans) -> list[str]:
    return [loan.loan_number for loan in loans]


def test_sheet_lists_due_overdue_and_paid_loans_not_the_rest(world, sheet):
    loans = sheet_loans(user=world.users["BS"], filters=filters(world, sheet))

    # Most days past due first, then by loan number.
    assert numbers(loans) == [
        sheet.overdue.loan_number,
        sheet.due.loan_number,
        sheet.paid.loan_number,
    ]
    assert sheet.not_due.loan_number not in numbers(loans)
    assert sheet.closed.loan_number not in numbers(loans)  # closed, though its dues say overdue
    assert world.loans["own"].loan_number not in numbers(loans)  # due after the date
    assert sheet.near_due.loan_number not in numbers(loans)  # another branch


def test_amount_due_is_arrears_plus_the_instalment_falling_due(world, sheet):
    loans = {
        loan.pk: loan for loan in sheet_loans(user=world.users["BS"], filters=filters(world, sheet))
    }

    assert loans[sheet.overdue.pk].arrears == Decimal("5090.00")
    assert loans[sheet.overdue.pk].amount_due == Decimal("5090.00")  # next due is later
    assert loans[sheet.due.pk].arrears == Decimal("0.00")
    assert loans[sheet.due.pk].amount_due == Decimal("5000.00")
    assert loans[sheet.paid.pk].amount_due == Decimal("0.00")

    totals = sheet_totals(user=world.users["BS"], filters=filters(world, sheet))
    assert (totals.count, totals.amount_due, totals.arrears) == (
        3,
        Decimal("10090.00"),
        Decimal("5090.00"),
    )


def test_a_later_date_adds_the_loans_falling_due_by_then(world, sheet):
    later = sheet.day + datetime.timedelta(days=10)
    loans = sheet_loans(user=world.users["BS"], filters=filters(world, sheet, business_date=later))

    assert numbers(loans) == [
        sheet.overdue.loan_number,
        sheet.due.loan_number,
        sheet.not_due.loan_number,
    ]


def test_filters_by_bucket_and_collection_officer_with_totals_of_the_filtered_sheet(world, sheet):
    officer = UserFactory(role="Branch Staff", home_branch=world.branches["own"])
    set_dues(sheet.due, next_due=sheet.day, officer=officer)
    user = world.users["BS"]
    cases = {
        "SMA1": (dict(bucket="SMA1"), [sheet.overdue]),
        "CURRENT": (dict(bucket="CURRENT"), [sheet.due, sheet.paid]),
        "NPA": (dict(bucket="NPA"), []),
        "officer": (dict(collector=str(officer.pk)), [sheet.due]),
        "unassigned": (dict(collector=UNASSIGNED), [sheet.overdue, sheet.paid]),
        "both": (dict(collector=str(officer.pk), bucket="SMA1"), []),
    }
    for name, (kw, expected) in cases.items():
        wanted = filters(world, sheet, **kw)
        loans = list(sheet_loans(user=user, filters=wanted))
        assert numbers(loans) == numbers(expected), name
        totals = sheet_totals(user=user, filters=wanted)
        assert totals.count == len(loans), name
        assert totals.amount_due == sum((loan.amount_due for loan in loans), Decimal("0.00")), name
        assert totals.arrears == sum((loan.arrears for loan in loans), Decimal("0.00")), name


def test_a_branch_user_never_sees_another_branchs_sheet(world, sheet):
    staff = world.users["BS"]

    assert list(sheet_branches(user=staff)) == [world.branches["own"]]
    near = filters(world, sheet, branch_id=world.branches["near"].pk)
    with pytest.raises(SheetBranchNotFound):
        sheet_loans(user=staff, filters=near)
    with pytest.raises(SheetBranchNotFound):
        sheet_totals(user=staff, filters=near)
    with pytest.raises(SheetBranchNotFound):
        day_collections(user=staff, branch_id=world.branches["near"].pk, business_date=sheet.day)


def test_an_area_manager_picks_among_the_branches_of_their_area(world, sheet):
    manager = world.users["AM"]

    assert set(sheet_branches(user=manager)) == {world.branches["own"], world.branches["near"]}
    near = filters(world, sheet, branch_id=world.branches["near"].pk)
    assert numbers(sheet_loans(user=manager, filters=near)) == [sheet.near_due.loan_number]
    with pytest.raises(SheetBranchNotFound):
        sheet_loans(user=manager, filters=filters(world, sheet, branch_id=world.branches["far"].pk))
    # Head office sees every branch.
    assert set(sheet_branches(user=world.users["OP"])) == set(world.branches.values())


def test_rows_carry_co_borrowers_the_current_mandate_and_the_days_receipts(world, sheet):
    people = world.people
    co_borrow(sheet.due, "Gauri Kulkarni")
    co_borrow(sheet.due, "Hari Kulkarni", role="GUARANTOR")
    active_mandate(sheet.due, people)
    draft_mandate(sheet.due, people["staff"], account_number="999988887777")  # newer, not current
    draft_mandate(sheet.overdue, people["staff"])
    pay(sheet.due, "5000.00", day=sheet.day, principal=people["staff"])
    pay(
        sheet.overdue,
        "700.00",
        day=sheet.day - datetime.timedelta(days=1),
        principal=people["staff"],
    )
    user = world.users["BS"]

    collections = day_collections(
        user=user, branch_id=world.branches["own"].pk, business_date=sheet.day
    )
    rows = {
        row.loan.pk: row
        for row in sheet_rows(
            user=user,
            loans=sheet_loans(user=user, filters=filters(world, sheet)),
            collections=collections,
        )
    }

    due = rows[sheet.due.pk]
    assert due.co_borrowers == ["Gauri Kulkarni", "Hari Kulkarni (guarantor)"]
    assert due.mandate_status == "Active"
    assert [(c.receipt_number.startswith("RCPT-"), c.amount) for c in due.collected] == [
        (True, Decimal("5000.00"))
    ]
    overdue = rows[sheet.overdue.pk]
    assert overdue.mandate_status == "Draft"
    assert overdue.collected == []  # paid the day before: not on this day's sheet
    assert rows[sheet.paid.pk].mandate_status == ""


def test_an_ended_mandate_is_current_only_when_no_other_is_in_progress(world, sheet):
    people = world.people

    def rejected(loan, account_number):
        # The sandbox bank activates what it is sent; the sheet only reads the status.
        mandate = draft_mandate(loan, people["staff"], account_number=account_number)
        Mandate.objects.filter(pk=mandate.pk).update(status=Mandate.Status.REJECTED)

    rejected(sheet.paid, "111122223333")
    rejected(sheet.due, "111122224444")
    draft_mandate(sheet.due, people["staff"], account_number="111122225555")

    def statuses(user):
        loans = sheet_loans(user=user, filters=filters(world, sheet))
        return {
            row.loan.pk: row.mandate_status
            for row in sheet_rows(user=user, loans=loans, collections=no_collections)
        }

    no_collections = DayCollections({})
    shown = statuses(world.users["BS"])
    assert shown[sheet.paid.pk] == "Rejected by bank" and shown[sheet.due.pk] == "Draft"
    assert shown[sheet.overdue.pk] == ""
    # Scoped like every read: another branch's user has no sheet of this branch at all.
    near_staff = UserFactory(role="Branch Staff", home_branch=world.branches["near"])
    with pytest.raises(SheetBranchNotFound):
        statuses(near_staff)
