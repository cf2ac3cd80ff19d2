"""The desk's screens through Django's test client: scope and permissions, the form's
refusals as field messages, the receipt (page, PDF, DUPLICATE), finding, the admin list."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from desk.models import DeskReceipt
from desk.services import CollectInput, desk_collect
from desk.views import collect_url
from tests.factories import UserFactory, make_loan

pytestmark = pytest.mark.django_db


def token_of(response) -> str:
    return re.search(r'name="token" value="([^"]+)"', response.content.decode())[1]


def form_data(response, **fields) -> dict:
    return {"token": token_of(response), "mode": "CASH", "remarks": "", **fields}


def test_the_collect_form_is_for_loans_in_scope_and_for_who_may_collect(client, world):
    client.force_login(world.users["BS"])
    assert client.get(collect_url(world.loans["near"].loan_number)).status_code == 404
    assert client.get(collect_url("LN0000000000")).status_code == 404
    page = client.get(collect_url(world.loans["own"].loan_number, "1500.00"))
    assert page.status_code == 200 and 'value="1500.00"' in page.content.decode()
    client.force_login(world.users["AU"])
    assert client.get(collect_url(world.loans["own"].loan_number)).status_code == 403


def test_preview_then_confirm_records_and_shows_the_receipt(client, world):
    client.force_login(world.users["BS"])
    loan = world.loans["own"]
    url = collect_url(loan.loan_number)
    data = form_data(client.get(url), amount="1,500.00".replace(",", ""))
    preview = client.post(url, {**data, "action": "preview"})
    html = preview.content.decode()
    assert "What it will pay" in html and "₹1,500.00" in html
    assert "Rupees One thousand five hundred only" in html
    assert not DeskReceipt.objects.exists()
    done = client.post(url, {**data, "action": "confirm"})
    receipt = DeskReceipt.objects.get()
    bare = reverse("desk:receipt", args=[receipt.pk])
    assert done.status_code == 302 and done["Location"].startswith(f"{bare}?issued=")
    page = client.get(done["Location"]).content.decode()
    assert "Sangam Finance Ltd" in page and receipt.receipt_number in page
    assert "DUPLICATE" not in page and "provisional" in page
    again = client.post(url, {**data, "action": "confirm"})  # the same form once more
    assert again["Location"] == done["Location"] and DeskReceipt.objects.count() == 1
    # The same confirmation's page again (a reload, the form sent again): not a reprint.
    reload = client.get(done["Location"]).content.decode()
    assert "DUPLICATE" not in reload and f'href="{bare}" id="receipt-reprint"' in reload
    assert client.get(done["Location"] + "&format=pdf").content[:5] == b"%PDF-"
    receipt.refresh_from_db()
    assert receipt.reprint_count == 0
    # The Reprint button (the receipt's own address) and a receipt found by number: reprints.
    assert "DUPLICATE" in client.get(bare).content.decode()
    found = client.get(reverse("desk:receipt_find"), {"number": receipt.receipt_number})
    assert found["Location"] == bare and "DUPLICATE" in client.get(bare).content.decode()
    receipt.refresh_from_db()
    assert receipt.reprint_count == 2


def test_the_confirm_reads_the_loan_and_the_form_key_once(client, world):
    client.force_login(world.users["BS"])
    url = collect_url(world.loans["own"].loan_number)
    data = form_data(client.get(url), amount="1500.00")
    client.post(url, {**data, "action": "preview"})
    with CaptureQueriesContext(connection) as confirm:
        assert client.post(url, {**data, "action": "confirm"}).status_code == 302
    selects = [q["sql"] for q in confirm.captured_queries if q["sql"].startswith("SELECT")]
    loan_reads = [sql for sql in selects if 'FROM "loans_loanaccount"' in sql]
    key_reads = [sql for sql in selects if 'FROM "desk_deskreceipt"' in sql]
    # the form's loan (the service takes it) and the ingestion's own check of it
    assert len(loan_reads) == 2
    assert len(key_reads) == 1  # under the series lock only (a refusal looks once more)


def test_refusals_are_field_messages_and_record_nothing(client, world):
    client.force_login(world.users["BS"])
    url = collect_url(world.loans["own"].loan_number)
    data = form_data(client.get(url))
    over = client.post(url, {**data, "amount": "250000", "action": "confirm"}).content.decode()
    assert "must be below ₹2,00,000.00" in over and 'class="errorlist' in over
    cheque = client.post(url, {**data, "amount": "500", "mode": "CHEQUE", "action": "preview"})
    assert "Enter the cheque&#x27;s 6-digit number." in cheque.content.decode()
    forged = client.post(url, {**data, "token": "x", "amount": "500", "action": "confirm"})
    assert "This form is not valid" in forged.content.decode()
    assert not DeskReceipt.objects.exists()


def test_the_receipt_pdf_is_a_pdf_and_counts_as_a_print(client, world):
    receipt = desk_collect(
        collect=CollectInput(world.loans["own"].loan_number, Decimal("123456.50"), "UPI",
                             upi_reference="612345678901"),
        idempotency_key="pdf-test", duplicate_confirmed=False, actor=world.users["BS"],
    )  # fmt: skip
    client.force_login(world.users["AU"])
    response = client.get(reverse("desk:receipt", args=[receipt.pk]) + "?format=pdf")
    assert response["Content-Type"] == "application/pdf" and response.content[:5] == b"%PDF-"
    assert "attachment" in response["Content-Disposition"]
    assert "DUPLICATE" in client.get(reverse("desk:receipt", args=[receipt.pk])).content.decode()
    near_staff = UserFactory(role="Branch Staff", home_branch=world.branches["near"])
    client.force_login(near_staff)  # a receipt of another branch does not exist for its staff
    assert client.get(reverse("desk:receipt", args=[receipt.pk])).status_code == 404


def test_find_a_loan_by_mobile_or_number_and_a_receipt_by_number(client, world):
    staff = world.users["BS"]
    client.force_login(staff)
    loan = world.loans["own"]
    mobile = loan.customer.mobile
    found = client.get(reverse("desk:find"), {"q": f"+91 {mobile[:5]} {mobile[5:]}"})
    assert found.status_code == 302 and found["Location"] == collect_url(loan.loan_number)
    second = make_loan(customer=loan.customer)
    listing = client.get(reverse("desk:find"), {"q": mobile}).content.decode()
    assert loan.loan_number in listing and second.loan_number in listing
    near = client.get(reverse("desk:find"), {"q": world.loans["near"].loan_number})
    assert "No loan that you may see" in near.content.decode()
    receipt = desk_collect(
        collect=CollectInput(loan.loan_number, Decimal("100.00"), "CASH"),
        idempotency_key="find-test", duplicate_confirmed=False, actor=staff,
    )  # fmt: skip
    by_number = client.get(reverse("desk:receipt_find"), {"number": receipt.receipt_number.lower()})
    assert by_number["Location"] == reverse("desk:receipt", args=[receipt.pk])
    missing = client.get(
        reverse("desk:receipt_find"), {"number": "NOPE/2026-27/000001"}, follow=True
    )
    assert "No receipt NOPE/2026-27/000001" in missing.content.decode()


def test_the_receipts_list_costs_the_same_queries_for_more_rows(client, world):
    staff = world.users["BS"]
    client.force_login(world.users["BM"])
    url = reverse("admin:desk_deskreceipt_changelist")

    def collect(n: int) -> None:
        for i in range(n):
            loan = make_loan(branch=world.branches["own"])
            desk_collect(
                collect=CollectInput(loan.loan_number, Decimal(f"{100 + i}"), "CASH"),
                idempotency_key=f"list-{DeskReceipt.objects.count()}-{i}",
                duplicate_confirmed=False, actor=staff,
            )  # fmt: skip

    collect(2)
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    collect(4)
    with CaptureQueriesContext(connection) as more:
        page = client.get(url).content.decode()
    assert len(more) == len(few)
    assert page.count("Not yet posted") == 6
    first = DeskReceipt.objects.order_by("pk").first()
    searched = client.get(url, {"q": first.receipt_number}).content.decode()
    assert first.receipt_number in searched and searched.count("Not yet posted") == 1
