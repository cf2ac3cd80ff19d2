"""Branch staff upload a file of repayments with bad rows in headless Chromium: the preview,
the import with its progress bar (Celery's embedded worker), the result file, and the same
file again: every row "already recorded", nothing recorded twice."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from payments.ddb_models import TransactionItem
from payments.tests.test_bulk import csv_bytes, row
from tests.browser import fits_the_window, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _upload(page, live_server, content: bytes) -> None:
    page.goto(f"{live_server.url}/admin/payments/bulkupload/add/")
    page.set_input_files(
        "#id_file", {"name": "agency.csv", "mimeType": "text/csv", "buffer": content}
    )
    page.click("#bulk-upload-form input[type=submit]")
    page.wait_for_selector("#bulk-rows")


def _import(page) -> None:
    page.click("#import-link")
    page.wait_for_selector("#confirm-text")
    page.click("#confirm-import")
    page.wait_for_selector("#bulk-done:not([hidden])", timeout=60_000)  # the bar finished
    assert page.eval_on_selector("#bulk-bar", "bar => bar.value === bar.max")


def _results(page) -> list[str]:
    return page.locator(".row-result strong").all_inner_texts()


def test_staff_preview_import_download_and_upload_the_same_file_again(live_server, browser, world):
    staff, own = world.users["BS"], world.loans["own"]
    content = csv_bytes(
        row(own, amount="1500.00", receipt="AG-1"),
        row(own, amount="abc", receipt="AG-2"),
        row("LN9999999999", receipt="AG-3"),
        row(own, amount="99.50", mode="UPI", receipt="AG-4", ref="UPI-123"),
        row(own, amount="10", receipt="AG-1"),  # the same receipt again
    )
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(15_000)
    log_in(page, live_server, staff)

    _upload(page, live_server, content)
    assert "2 of 5 row(s) can be imported" in page.inner_text(".messagelist")
    assert _results(page) == ["Valid", "Invalid", "Invalid", "Valid", "Invalid"]
    rows = page.inner_text("#bulk-rows")
    assert "The amount “abc” is not a number." in rows
    assert "No loan account LN9999999999 that you may post to." in rows
    assert "Duplicate row: receipt AG-1 is also on row 2." in rows
    assert own.customer.name in rows and "₹1,500.00" in rows
    assert fits_the_window(page)
    assert TransactionItem.count() == 0  # the preview records nothing

    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        _import(page)
        assert page.inner_text("#count-recorded") == "2"
        assert page.inner_text("#count-refused") == "3"
        with page.expect_download() as download:
            page.click("#result-link")
        result = Path(download.value.path()).read_text()
        lines = list(csv.DictReader(io.StringIO(result)))
        assert [line["status"] for line in lines] == [
            "Recorded",
            "Invalid",
            "Invalid",
            "Recorded",
            "Invalid",
        ]
        assert all(len(lines[n]["transaction_id"]) == 26 for n in (0, 3))
        assert TransactionItem.count() == 2

        _upload(page, live_server, content)  # the same file again
        assert _results(page) == [
            "Already recorded",
            "Invalid",
            "Invalid",
            "Already recorded",
            "Invalid",
        ]
        _import(page)
        assert page.inner_text("#count-recorded") == "0"
        assert page.inner_text("#count-already") == "2"
        page.click("#rows-link")
        page.wait_for_selector("#bulk-rows")
        assert _results(page) == [
            "Already recorded",
            "Invalid",
            "Invalid",
            "Already recorded",
            "Invalid",
        ]
    assert TransactionItem.count() == 2  # nothing recorded twice
