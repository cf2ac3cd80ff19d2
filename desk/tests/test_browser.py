"""Branch staff at the counter, in headless Chromium: collect from the loan's page with a
preview, a double click and a resubmission that record once (the same receipt, not a
reprint), a reprint marked DUPLICATE, a duplicate warning confirmed, a cash limit refusal,
and the day's DCR equal to the sum of the desk's receipts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from desk.models import DeskReceipt
from payments.ddb_models import TransactionItem
from payments.services import payment_post_one
from reconciliation.services import dcr_build
from tests.browser import fits_the_window, log_in
from tests.factories import BranchFactory, UserFactory, make_loan

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


RESUBMIT = """sent => {
  const form = document.createElement("form");
  form.method = "post";
  form.setAttribute("action", sent.url);
  for (const [name, value] of Object.entries({...sent.fields, action: "confirm"})) {
    const input = document.createElement("input");
    input.type = "hidden"; input.name = name; input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}"""


def fill_and_preview(page, amount: str, mode: str = "CASH") -> None:
    page.fill("#id_amount", amount)
    page.check(f"input[name=mode][value={mode}]")
    page.click("#preview")


def test_collect_with_preview_double_click_resubmit_and_reprint(live_server, page):
    branch = BranchFactory(code="PUN01", name="Pune Camp")
    staff = UserFactory(
        role="Branch Staff", home_branch=branch, username="asha", first_name="Asha",
        last_name="Kulkarni",
    )  # fmt: skip
    loan = make_loan(branch=branch)
    log_in(page, live_server, staff)

    page.goto(f"{live_server.url}{reverse('admin:loans_loanaccount_change', args=[loan.pk])}")
    page.click("#collect-payment")
    page.wait_for_load_state()  # the page's script runs when the document has loaded
    assert page.is_hidden("#id_cheque_number")  # only the chosen mode's details
    page.check("input[name=mode][value=CHEQUE]")
    assert page.is_visible("#id_cheque_number")
    fill_and_preview(page, "12345.50")
    assert "₹12,345.50" in page.inner_text("#preview-amount")
    assert "Rupees Twelve thousand three hundred and forty-five and fifty paise only" in (
        page.inner_text("#preview-amount")
    )
    assert page.locator("#collect-preview .allocation-row").count() >= 1
    assert page.inner_text("#allocation-total") == "₹12,345.50"

    sent = page.evaluate(
        "() => ({url: document.querySelector('#collect-form').getAttribute('action'),"
        " fields: Object.fromEntries(new FormData(document.querySelector('#collect-form')))})"
    )
    page.dblclick("#confirm")  # a double click sends the form twice
    page.wait_for_selector("#receipt")
    assert DeskReceipt.objects.count() == 1
    receipt = DeskReceipt.objects.get()
    assert page.inner_text("#receipt-number") == receipt.receipt_number
    assert receipt.receipt_number.startswith("PUN01/20") and receipt.receipt_number.endswith(
        "/000001"
    )
    assert page.inner_text("#receipt-lender") == "Sangam Finance Ltd"
    assert page.inner_text("#receipt-amount") == "₹12,345.50"
    assert page.inner_text("#receipt-collector") == "Asha Kulkarni"
    assert page.inner_text("#receipt-customer").startswith(loan.customer.name)
    assert "IST" in page.inner_text("#receipt-when")
    assert "provisional" in page.inner_text("#receipt-provisional")
    # The double click's first request may or may not have been shown: either way, once.
    receipt_url = page.url

    # The same form sent again later (a retry after a timeout, or back and resubmit) and a
    # reload: the same confirmation's receipt, not a reprint.
    page.evaluate(RESUBMIT, sent)
    page.wait_for_selector("#receipt")
    assert page.url == receipt_url
    assert page.locator("#receipt-duplicate").count() == 0
    page.reload()
    page.wait_for_selector("#receipt")
    assert page.locator("#receipt-duplicate").count() == 0
    assert DeskReceipt.objects.count() == 1
    assert len(list(TransactionItem.by_loan.query(loan.loan_number))) == 1
    with page.expect_download() as download:
        page.click("#receipt-pdf")
    assert (
        download.value.suggested_filename
        == f"receipt-{receipt.receipt_number.replace('/', '-')}.pdf"
    )
    receipt.refresh_from_db()
    assert receipt.reprint_count == 0

    # The Reprint button: marked DUPLICATE, counted.
    with page.expect_navigation():
        page.click("#receipt-reprint")
    assert page.inner_text("#receipt-duplicate") == "DUPLICATE"
    receipt.refresh_from_db()
    assert receipt.reprint_count == 1

    # Found by number later: a reprint too.
    page.goto(f"{live_server.url}{reverse('desk:receipt_find')}")
    page.fill("#receipt-number", receipt.receipt_number.lower())
    with page.expect_navigation():
        page.click("#receipt-find input[type=submit]")
    page.wait_for_selector("#receipt")
    assert page.url == f"{live_server.url}{reverse('desk:receipt', args=[receipt.pk])}"
    assert page.inner_text("#receipt-duplicate") == "DUPLICATE"
    receipt.refresh_from_db()
    assert receipt.reprint_count == 2


def test_duplicate_warning_cash_limit_and_the_dcr_equals_the_desk_receipts(live_server, page):
    branch = BranchFactory(code="NSK02", name="Nashik Road")
    staff = UserFactory(role="Branch Staff", home_branch=branch, username="ravi")
    loan = make_loan(branch=branch)
    other = make_loan(branch=branch)
    mobile = loan.customer.mobile
    log_in(page, live_server, staff)

    # Found by mobile, typed as people type it.
    page.goto(f"{live_server.url}{reverse('desk:find')}")
    page.fill("#desk-q", f"+91 {mobile[:5]} {mobile[5:]}")
    page.click("#desk-find input[type=submit]")
    page.wait_for_selector("#collect-form")

    fill_and_preview(page, "250000")  # cash of 2 lakh or more: refused
    assert "must be below ₹2,00,000.00" in page.inner_text(".field-amount .errorlist")
    fill_and_preview(page, "2000")
    page.click("#confirm")
    page.wait_for_selector("#receipt")

    page.goto(f"{live_server.url}{reverse('desk:collect')}?loan={loan.loan_number}")
    fill_and_preview(page, "2000")  # the same amount again within ten minutes
    assert "was received on this loan" in page.inner_text("#duplicate-warning")
    page.click("#confirm")
    assert "Tick the box" in page.inner_text("#duplicate-warning")
    assert DeskReceipt.objects.count() == 1
    page.check("#id_confirm_duplicate")
    page.click("#confirm")
    page.wait_for_selector("#receipt")
    second = DeskReceipt.objects.order_by("pk").last()
    assert second.duplicate_warned and second.duplicate_confirmed_by == staff

    page.goto(f"{live_server.url}{reverse('desk:collect')}?loan={other.loan_number}&amount=750")
    page.check("input[name=mode][value=UPI]")
    page.fill("#id_upi_reference", "612345678901")
    page.click("#preview")
    page.click("#confirm")
    page.wait_for_selector("#receipt")

    receipts = list(DeskReceipt.objects.order_by("pk"))
    assert [r.receipt_number[-6:] for r in receipts] == ["000001", "000002", "000003"]
    for receipt in receipts:
        payment_post_one(txn_id=receipt.txn_id)
    page.reload()  # the confirmation's own page again: not a reprint
    assert "Posted to the loan" in page.inner_text("#receipt-status")
    assert page.locator("#receipt-provisional").count() == 0
    assert page.locator("#receipt-duplicate").count() == 0
    with page.expect_navigation():
        page.click("#receipt-reprint")
    assert page.inner_text("#receipt-duplicate") == "DUPLICATE"

    day = receipts[0].business_date
    dcr = dcr_build(branch_id=branch.pk, business_date=day)
    assert dcr.collected_count == 3
    assert dcr.collected_amount == sum((r.amount for r in receipts), Decimal("0.00"))
    assert dcr.cash_amount == Decimal("4000.00")
    assert sorted(dcr.txn_ids) == sorted(r.txn_id for r in receipts)

    # The branch's receipts list: each receipt once, fitting a 1366 px window.
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{live_server.url}{reverse('admin:desk_deskreceipt_changelist')}")
    listed = page.locator("#result_list tbody tr").all_inner_texts()
    assert sorted(row.split()[0] for row in listed) == sorted(r.receipt_number for r in receipts)
    assert sum("1 reprint" in row for row in listed) == 1  # the one reprinted above
    assert fits_the_window(page)
