"""Collecting at the desk: the receipt series (per branch and financial year, no gaps from
refusals, never reused, also after a lost commit), the cash limit, the duplicate warning,
the mode's details, scoping, reprints."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from core.models import OutboxMessage
from desk import selectors, services
from desk.exceptions import CashLimitExceeded, CollectRefused, DuplicateNotConfirmed
from desk.models import DeskReceipt, ReceiptSeries
from desk.services import (
    ISSUE_WINDOW,
    CollectInput,
    desk_collect,
    financial_year,
    receipt_issue_token,
    receipt_show,
)
from loans.models import LoanAccount
from payments.ddb_models import TransactionItem
from payments.exceptions import LoanNotFound, PaymentRejected
from tests.factories import UserFactory, make_loan, pay

pytestmark = pytest.mark.django_db

_keys = itertools.count()


def key() -> str:
    return f"desk-test-{next(_keys)}-{timezone.now().timestamp()}"


def collect(world_or_loan, staff, amount="1500.00", *, form_key=None, confirmed=False, **kw):
    loan = world_or_loan
    return desk_collect(
        collect=CollectInput(loan_number=loan.loan_number, amount=Decimal(amount), **kw)
        if "mode" in kw
        else CollectInput(loan_number=loan.loan_number, amount=Decimal(amount), mode="CASH"),
        idempotency_key=form_key or key(),
        duplicate_confirmed=confirmed,
        actor=staff,
    )


def series_prefix(branch) -> str:
    today = services.business_date_for(branch, timezone.now())
    return f"{branch.code}/{financial_year(today)}/"


def txns_of(loan) -> list[TransactionItem]:
    return list(TransactionItem.by_loan.query(loan.loan_number))


def test_collect_records_the_payment_once_with_the_next_number_of_the_branch_series(world):
    staff, loan, own = world.users["BS"], world.loans["own"], world.branches["own"]
    first = collect(loan, staff, "1500.00")
    second = collect(loan, staff, "2500.00")
    prefix = series_prefix(own)
    assert (first.receipt_number, second.receipt_number) == (f"{prefix}000001", f"{prefix}000002")
    assert first.collector == staff and first.branch == own and first.amount == Decimal("1500.00")
    stored = {t.txn_id: t for t in txns_of(loan)}
    assert set(stored) == {first.txn_id, second.txn_id}
    assert stored[first.txn_id].receipt_number == first.receipt_number
    assert stored[first.txn_id].source == services.SOURCE
    assert stored[first.txn_id].amount_paise == 150000
    assert first.allocation["rows"], "the preview's split is kept for the provisional receipt"


def test_each_branch_has_its_own_series(world):
    near_staff = UserFactory(role="Branch Staff", home_branch=world.branches["near"])
    own = collect(world.loans["own"], world.users["BS"])
    near = collect(world.loans["near"], near_staff)
    assert own.receipt_number.endswith("/000001") and near.receipt_number.endswith("/000001")
    assert own.receipt_number.split("/")[0] == world.branches["own"].code
    assert near.receipt_number.split("/")[0] == world.branches["near"].code


def test_the_financial_year_runs_april_to_march_and_a_new_year_starts_a_new_series(world):
    assert financial_year(datetime.date(2027, 3, 31)) == "2026-27"
    assert financial_year(datetime.date(2027, 4, 1)) == "2027-28"
    assert financial_year(datetime.date(2099, 12, 1)) == "2099-00"
    branch = world.branches["own"]
    with transaction.atomic():
        march, in_march = services._series_take(branch, datetime.date(2027, 3, 31))
        march.next_number = 42
        march.save()
        _, still_march = services._series_take(branch, datetime.date(2027, 3, 31))
        _, in_april = services._series_take(branch, datetime.date(2027, 4, 1))
    assert in_march == f"{branch.code}/2026-27/000001"
    assert still_march == f"{branch.code}/2026-27/000042"
    assert in_april == f"{branch.code}/2027-28/000001"


def test_refusals_take_no_number(world):
    staff, loan, own = world.users["BS"], world.loans["own"], world.branches["own"]
    collect(loan, staff, "1000.00")
    with pytest.raises(CashLimitExceeded) as refused:
        collect(loan, staff, "200000.00")
    assert refused.value.field == "amount" and "s.269ST" in str(refused.value)
    with pytest.raises(DuplicateNotConfirmed):
        collect(loan, staff, "1000.00")  # the same amount again within ten minutes

    real_ingest = services.payment_ingest

    def loan_closed_meanwhile(**kwargs):  # the ingestion's own check refuses it
        LoanAccount.objects.filter(pk=loan.pk).update(status=LoanAccount.Status.CLOSED)
        return real_ingest(**kwargs)

    with (
        mock.patch.object(services, "payment_ingest", loan_closed_meanwhile),
        pytest.raises(PaymentRejected),
    ):
        collect(loan, staff, "3000.00")
    assert LoanAccount.objects.get(pk=loan.pk).status == LoanAccount.Status.ACTIVE  # rolled back
    after = collect(loan, staff, "4000.00")
    assert after.receipt_number == f"{series_prefix(own)}000002"
    assert len(txns_of(loan)) == 2


def test_a_closed_loan_is_refused_before_a_number_is_taken(world):
    loan = world.loans["own"]
    LoanAccount.objects.filter(pk=loan.pk).update(status=LoanAccount.Status.CLOSED)
    with pytest.raises(CollectRefused) as refused:
        collect(loan, world.users["BS"])
    assert refused.value.field == "loan"
    assert not ReceiptSeries.objects.exists() and txns_of(loan) == []


def test_the_same_form_twice_records_one_payment(world):
    staff, loan = world.users["BS"], world.loans["own"]
    form_key = key()
    first = collect(loan, staff, form_key=form_key)
    again = collect(loan, staff, form_key=form_key)
    assert again.pk == first.pk
    assert DeskReceipt.objects.count() == 1 and len(txns_of(loan)) == 1


def test_the_same_form_again_gets_its_receipt_after_the_payment_closed_the_loan(world):
    staff, loan = world.users["BS"], world.loans["own"]
    form_key = key()
    first = collect(loan, staff, form_key=form_key)
    LoanAccount.objects.filter(pk=loan.pk).update(status=LoanAccount.Status.CLOSED)
    assert collect(loan, staff, form_key=form_key).pk == first.pk
    with pytest.raises(CollectRefused):  # a new form on the closed loan is refused
        collect(loan, staff)
    assert DeskReceipt.objects.count() == 1


def test_the_loan_the_form_read_is_used_and_one_of_another_number_is_not(world):
    staff, loan, other = world.users["BS"], world.loans["own"], world.loans["near"]
    read = selectors.loan_for_collect(user=staff, loan_number=loan.loan_number)
    receipt = desk_collect(
        collect=CollectInput(loan_number=loan.loan_number, amount=Decimal("10.00"), mode="CASH"),
        idempotency_key=key(), duplicate_confirmed=False, actor=staff, loan=read,
    )  # fmt: skip
    assert receipt.loan_id == loan.pk
    with pytest.raises(LoanNotFound):  # a loan that is not the payment's is read again
        desk_collect(
            collect=CollectInput(loan_number=other.loan_number, amount=Decimal("10.00"),
                                 mode="CASH"),
            idempotency_key=key(), duplicate_confirmed=False, actor=staff, loan=read,
        )  # fmt: skip


class LostCommit(Exception):
    pass


def collect_and_lose_the_commit(loan, staff, form_key, amount="1500.00"):
    """DynamoDB accepts the payment, then the Postgres transaction does not commit."""
    with pytest.raises(LostCommit), transaction.atomic():
        collect(loan, staff, amount, form_key=form_key)
        raise LostCommit


def test_a_retry_after_a_lost_commit_records_the_receipt_from_the_ingestion_replay(world):
    staff, loan, own = world.users["BS"], world.loans["own"], world.branches["own"]
    form_key = key()
    collect_and_lose_the_commit(loan, staff, form_key)
    assert not DeskReceipt.objects.exists()
    (lost,) = txns_of(loan)
    retried = collect(loan, staff, form_key=form_key)
    assert retried.txn_id == lost.txn_id
    assert retried.receipt_number == lost.receipt_number == f"{series_prefix(own)}000001"
    assert len(txns_of(loan)) == 1
    assert collect(loan, staff, "99.00").receipt_number.endswith("/000002")


def test_a_number_held_by_a_lost_commit_is_skipped_and_the_retry_keeps_it(world):
    staff, loan = world.users["BS"], world.loans["own"]
    other_loan = make_loan(branch=world.branches["own"])
    lost_key = key()
    collect_and_lose_the_commit(loan, staff, lost_key)
    # Another form at the branch meanwhile: its number 1 is held in DynamoDB, so it gets 2.
    other = collect(other_loan, staff, "700.00")
    assert other.receipt_number.endswith("/000002")
    # The lost form's retry: its body now differs (the series is at 3), the replay says 1.
    retried = collect(loan, staff, form_key=lost_key)
    assert retried.receipt_number.endswith("/000001")
    assert len(txns_of(loan)) == 1
    # ... and the series goes on past both, never reusing one.
    assert collect(other_loan, staff, "800.00").receipt_number.endswith("/000003")


def test_cash_at_or_over_the_branch_limit_is_refused_other_modes_are_not(world):
    staff, loan, own = world.users["BS"], world.loans["own"], world.branches["own"]
    own.cash_receipt_limit = Decimal("50000.00")
    own.save()
    with pytest.raises(CashLimitExceeded) as refused:
        collect(loan, staff, "50000.00")
    assert "₹50,000.00" in str(refused.value)
    assert collect(loan, staff, "49999.99").mode == "CASH"
    cheque = collect(
        loan,
        staff,
        "60000.00",
        mode="CHEQUE",
        cheque_number="004512",
        cheque_bank="State Bank of India",
        cheque_date=timezone.localdate(),
    )
    assert cheque.mode_details.startswith("Cheque 004512, State Bank of India")


def test_a_possible_duplicate_needs_a_recorded_confirmation(world):
    staff, loan = world.users["BS"], world.loans["own"]
    pay(loan, "1200.00", day=timezone.localdate(), principal=staff)  # e.g. the field app's
    with pytest.raises(DuplicateNotConfirmed) as refused:
        collect(loan, staff, "1200.00")
    assert refused.value.field == "confirm_duplicate"
    assert not DeskReceipt.objects.exists()
    confirmed = collect(loan, staff, "1200.00", confirmed=True)
    assert confirmed.duplicate_warned and confirmed.duplicate_confirmed_by == staff
    other_amount = collect(loan, staff, "1300.00")
    assert not other_amount.duplicate_warned and other_amount.duplicate_confirmed_by is None


def test_an_old_payment_of_the_same_amount_is_no_duplicate(world):
    staff, loan = world.users["BS"], world.loans["own"]
    earlier = timezone.now() - selectors.DUPLICATE_WINDOW - datetime.timedelta(minutes=1)
    with mock.patch("django.utils.timezone.now", return_value=earlier):
        pay(loan, "1200.00", day=timezone.localdate(), principal=staff)
    assert not collect(loan, staff, "1200.00").duplicate_warned


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"mode": "CHEQUE", "cheque_bank": "SBI", "cheque_date": "today"}, "cheque_number"),
        ({"mode": "CHEQUE", "cheque_number": "123456", "cheque_date": "today"}, "cheque_bank"),
        ({"mode": "CHEQUE", "cheque_number": "123456", "cheque_bank": "SBI"}, "cheque_date"),
        (
            {"mode": "CHEQUE", "cheque_number": "123456", "cheque_bank": "SBI", "cheque_date": 1},
            "cheque_date",
        ),
        ({"mode": "UPI", "upi_reference": "12345"}, "upi_reference"),
        ({"mode": "NEFT", "neft_utr": "short"}, "neft_utr"),
        ({"mode": "BITCOIN"}, "mode"),
    ],
)
def test_the_mode_details_are_checked(world, details, field):
    if details.get("cheque_date") == "today":
        details["cheque_date"] = timezone.localdate()
    elif details.get("cheque_date") == 1:  # post-dated
        details["cheque_date"] = timezone.localdate() + datetime.timedelta(days=1)
    with pytest.raises(CollectRefused) as refused:
        collect(world.loans["own"], world.users["BS"], **details)
    assert refused.value.field == field
    assert not ReceiptSeries.objects.exists()


def test_details_of_other_modes_are_dropped(world):
    receipt = collect(
        world.loans["own"], world.users["BS"], mode="UPI", upi_reference="612345678901",
        cheque_number="999999",
    )  # fmt: skip
    assert receipt.upi_reference == "612345678901" and receipt.cheque_number == ""
    assert receipt.mode_details == "UPI, reference 612345678901"


def test_a_branch_user_collects_and_sees_receipts_of_their_branch_only(world):
    staff = world.users["BS"]
    with pytest.raises(LoanNotFound):
        collect(world.loans["near"], staff)
    near_staff = UserFactory(role="Branch Staff", home_branch=world.branches["near"])
    near_receipt = collect(world.loans["near"], near_staff)
    own_receipt = collect(world.loans["own"], staff)
    assert list(selectors.receipts_visible(user=staff)) == [own_receipt]
    assert selectors.receipt_by_number(user=staff, number=near_receipt.receipt_number) is None
    found = selectors.receipt_by_number(user=staff, number=f" {own_receipt.receipt_number} ")
    assert found == own_receipt
    assert set(selectors.receipts_visible(user=world.users["AU"])) == {near_receipt, own_receipt}
    assert selectors.loans_find(user=staff, query=world.loans["near"].loan_number) == []


def test_find_a_loan_by_mobile_typed_with_spaces_or_country_code(world):
    loan = world.loans["own"]
    mobile = loan.customer.mobile
    for typed in (mobile, f"+91 {mobile[:5]} {mobile[5:]}", f"0{mobile}", f"91-{mobile}"):
        assert selectors.loans_find(user=world.users["BS"], query=typed) == [loan], typed
    assert selectors.loans_find(user=world.users["BS"], query="12345") == []


def test_a_reprint_is_counted_and_audited(world):
    receipt = collect(world.loans["own"], world.users["BS"])
    manager = world.users["BM"]
    assert receipt_show(receipt=receipt, actor=manager) is False
    assert receipt_show(receipt=receipt, actor=manager, fmt="pdf") is True
    assert receipt_show(receipt=receipt, actor=manager) is True
    receipt.refresh_from_db()
    assert receipt.reprint_count == 2 and receipt.first_shown_at is not None
    events = [
        m.payload
        for m in OutboxMessage.objects.filter(ref=f"desk.deskreceipt#{receipt.pk}")
        if "reprint_count" in m.payload.get("changes", {})
    ]
    assert len(events) == 2
    assert events[0]["changes"]["reprint_count"] == [0, 1]
    assert "DUPLICATE" in events[0]["remarks"]


def test_the_confirmation_s_own_showings_are_not_reprints_but_an_explicit_reprint_is(world):
    staff, manager = world.users["BS"], world.users["BM"]
    receipt = collect(world.loans["own"], staff)
    token = receipt_issue_token(receipt=receipt, actor=staff)
    assert token == receipt_issue_token(receipt=receipt, actor=staff)  # a reload: same address
    # The redirect after confirming, its reloads and its PDF: the original.
    for fmt in ("html", "html", "pdf", "html"):
        assert receipt_show(receipt=receipt, actor=staff, fmt=fmt, issue_token=token) is False
    # Without the token (the Reprint button, found by number), a forged token, the token
    # in another user's hands: reprints.
    assert receipt_show(receipt=receipt, actor=staff) is True
    assert receipt_show(receipt=receipt, actor=staff, issue_token=token + "x") is True
    assert receipt_show(receipt=receipt, actor=manager, issue_token=token) is True
    manager_token = receipt_issue_token(receipt=receipt, actor=manager)  # not the collector
    assert receipt_show(receipt=receipt, actor=manager, issue_token=manager_token) is True
    receipt.refresh_from_db()
    assert receipt.reprint_count == 4
    reprints = [
        m for m in OutboxMessage.objects.filter(ref=f"desk.deskreceipt#{receipt.pk}")
        if "reprint_count" in m.payload.get("changes", {})
    ]  # fmt: skip
    assert len(reprints) == 4


def test_the_confirmation_s_token_no_longer_counts_after_the_issue_window(world):
    staff = world.users["BS"]
    receipt = collect(world.loans["own"], staff)
    token = receipt_issue_token(receipt=receipt, actor=staff)
    assert receipt_show(receipt=receipt, actor=staff, issue_token=token) is False
    later = receipt.created_at - ISSUE_WINDOW - datetime.timedelta(seconds=1)
    DeskReceipt.objects.filter(pk=receipt.pk).update(created_at=later)
    receipt.refresh_from_db()
    assert receipt_show(receipt=receipt, actor=staff, issue_token=token) is True


def test_the_receipt_shows_the_preview_until_posted_then_the_posting(world):
    from payments.services import payment_post_one

    staff, loan = world.users["BS"], world.loans["own"]
    receipt = collect(loan, staff, "1500.00")
    state = selectors.receipt_state(receipt=receipt, user=staff)
    assert state.status == "RECEIVED" and state.provisional
    assert state.paid.interest + state.paid.principal + state.paid.charges == Decimal("1500.00")
    payment_post_one(txn_id=receipt.txn_id)
    posted = selectors.receipt_state(receipt=receipt, user=staff)
    assert posted.status == "POSTED" and not posted.provisional
    assert [r["total"] for r in posted.paid.rows] == [r["total"] for r in state.paid.rows]


def test_a_posting_that_fails_shows_so_on_the_receipt(world):
    from payments.services import payment_post_one

    staff, loan = world.users["BS"], world.loans["own"]
    receipt = collect(loan, staff, "1500.00")
    LoanAccount.objects.filter(pk=loan.pk).update(status=LoanAccount.Status.CLOSED)
    payment_post_one(txn_id=receipt.txn_id)  # the ledger refuses a closed loan: FAILED
    state = selectors.receipt_state(receipt=receipt, user=staff)
    assert state.status == "FAILED" and state.provisional
