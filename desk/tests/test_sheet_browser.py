"""Branch staff work through the day's collection sheet in headless Chromium."""

from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from tests.browser import fits_the_window, log_in
from tests.factories import pay
from tests.world import build_world

from .sheet_data import build_sheet, set_dues

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_branch_staff_filter_the_sheet_see_receipts_and_open_collect(live_server, page):
    world = build_world()
    sheet = build_sheet(world)
    staff = world.users["BS"]
    receipt_txn = pay(sheet.due, "5000.00", day=sheet.day, principal=staff)
    assert receipt_txn

    page.set_viewport_size({"width": 1366, "height": 900})
    log_in(page, live_server, staff)

    page.goto(f"{live_server.url}{reverse('desk:sheet')}")
    rows = page.locator("tr.sheet-row")
    assert rows.count() == 3
    assert page.locator("#sheet-count").inner_text() == "3"
    assert page.locator("#sheet-total-due").inner_text() == "₹10,090.00"
    # The table fits a 1366 px window: no horizontal scrolling.
    assert fits_the_window(page)

    # The collected row shows its receipt number, linked to the receipt search.
    collected = page.locator(f"tr[data-loan='{sheet.due.loan_number}']")
    receipt = collected.locator(".sheet-receipt a")
    assert receipt.inner_text().startswith("RCPT-")
    href = urlparse(receipt.get_attribute("href"))
    assert href.path == reverse("desk:receipt_find")
    assert parse_qs(href.query)["number"] == [receipt.inner_text()]
    assert collected.locator("a.sheet-collect").count() == 0

    # Filter by bucket: only the SMA-1 loan, whose Collect carries the loan and amount due.
    page.select_option("#id_bucket", "SMA1")
    page.click("#sheet-show")
    page.wait_for_url("**bucket=SMA1**")
    assert page.locator("tr.sheet-row").count() == 1
    assert page.locator("#sheet-total-due").inner_text() == "₹5,090.00"
    collect = page.locator(f"tr[data-loan='{sheet.overdue.loan_number}'] a.sheet-collect")
    link = urlparse(collect.get_attribute("href"))
    assert link.path == reverse("desk:collect")
    assert parse_qs(link.query) == {"loan": [sheet.overdue.loan_number], "amount": ["5090.00"]}
    assert "Bhavesh Patil" in page.locator("#sheet-table").inner_text()

    # The print view: every row of the filtered sheet, without the admin around it.
    set_dues(sheet.paid, next_due=sheet.day, dpd=40, overdue=("100.00", "0", "0"))
    with page.context.expect_page() as printed:
        page.click("#sheet-print")
    sheet_page = printed.value
    sheet_page.wait_for_selector("#sheet-table")
    assert sheet_page.locator("tr.sheet-row").count() == 2
    assert sheet_page.locator("#header").count() == 0
