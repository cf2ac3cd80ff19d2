"""A new user brings customers in through the admin in headless Chromium: download the
template, fill it, upload it, read the preview, import it with the progress bar (Celery's
embedded worker), download the result file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker

from config.celery import app
from imports.models import ImportRun
from loans.models import Customer
from tests.browser import log_in
from tests.factories import BranchFactory, UserFactory

from .helpers import customer_row

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operations_downloads_a_template_fills_it_and_imports_it(live_server, browser):
    BranchFactory(code="PUN01")
    ops = UserFactory(role="Operations")
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    page.set_default_timeout(15_000)
    log_in(page, live_server, ops)

    page.goto(f"{live_server.url}/admin/imports/importrun/add/")
    assert page.evaluate("document.documentElement.scrollWidth <= 1366")
    with page.expect_download() as download:
        page.click("#template-customers")
    template = Path(download.value.path()).read_text(encoding="utf-8-sig")
    header = next(csv.reader(io.StringIO(template)))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in (customer_row("L1", "PUN01"), customer_row("L2", "PUN01", pan="BAD")):
        writer.writerow([row.get(key, "") for key in header])

    page.select_option("#id_kind", "customers")
    page.set_input_files(
        "#id_file",
        {"name": "customers.csv", "mimeType": "text/csv", "buffer": out.getvalue().encode()},
    )
    with page.expect_navigation():
        page.click("#import-upload-form input[type=submit]")
    page.wait_for_selector("#run-rows")
    assert "1 of 2 row(s) can be imported" in page.inner_text(".messagelist")
    assert page.locator(".row-result strong").all_inner_texts() == ["Created", "Refused"]
    assert "Enter a valid PAN" in page.inner_text("#run-rows")
    assert not Customer.objects.exists()  # the preview writes nothing

    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        page.click("#import-link")
        page.wait_for_selector("#confirm-text")
        with page.expect_navigation():
            page.click("#confirm-import")
        page.wait_for_selector("#run-done:not([hidden])", timeout=60_000)
        assert page.eval_on_selector("#run-bar", "bar => bar.value === bar.max")
        assert page.inner_text("#count-created") == "1"
        assert page.inner_text("#count-refused") == "1"
        with page.expect_download() as download:
            page.click("#result-link")
        lines = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert [line["status"] for line in lines] == ["CREATED", "REFUSED"]
    assert lines[1]["field"] == "pan"
    assert Customer.objects.get().customer_number == "L1"
    assert ImportRun.objects.get(dry_run=False).status == ImportRun.Status.DONE
