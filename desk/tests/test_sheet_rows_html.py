"""The collection sheet's rows as ``{% sheet_rows %}`` writes them: every value escaped,
money and dates in the one format, the collected column in each of its states."""

from __future__ import annotations

import datetime
from decimal import Decimal

from accounts.models import User
from desk.sheet_selectors import Collection, SheetRow
from desk.templatetags.desk_sheet import sheet_rows
from loans.models import Customer, LoanAccount

URLS = {"loans": "/admin/loans/loanaccount/", "collect": "/desk/collect/", "receipt_find": "/r/"}


def row(**kw) -> SheetRow:
    loan = LoanAccount(
        pk=7,
        loan_number="LN0000000007",
        customer=Customer(name="Asha <b>& Co</b>", mobile="9876543210"),
        next_due_date=kw.pop("next_due_date", datetime.date(2026, 12, 8)),
        dpd=kw.pop("dpd", 45),
        bucket=kw.pop("bucket", "SMA1"),
        last_payment_date=kw.pop("last_payment_date", None),
        last_payment_amount=kw.pop("last_payment_amount", Decimal("0.00")),
        collection_officer=kw.pop("officer", None),
    )
    loan.arrears = kw.pop("arrears", Decimal("123456.50"))
    loan.amount_due = kw.pop("amount_due", Decimal("125000.00"))
    return SheetRow(loan=loan, **kw)


def test_a_row_to_collect_escapes_its_values_and_formats_money_and_dates():
    html = sheet_rows([row(co_borrowers=["Ravi <i>", "Meena (guarantor)"])], URLS)
    assert html.startswith('<tr class="sheet-row bucket-sma1" data-loan="LN0000000007">')
    assert '<a href="/admin/loans/loanaccount/7/change/">LN0000000007</a>' in html
    assert "<td>Asha &lt;b&gt;&amp; Co&lt;/b&gt;<div" in html
    assert "with Ravi &lt;i&gt;, Meena (guarantor)</div>" in html
    assert '<a href="tel:+919876543210">9876543210</a>' in html
    assert '<td class="nowrap">08 Dec 2026</td>' in html
    assert '<td class="num sheet-due">₹1,25,000.00</td>' in html
    assert '<td class="num">₹1,23,456.50</td>' in html and '<td class="num">45</td>' in html
    assert '<td class="nowrap">SMA-1 (31-60)</td>' in html
    assert "<td>&mdash;</td>" in html  # no mandate
    assert '<td class="nowrap">&mdash;</td>' in html  # no last payment
    assert (
        '<a class="button sheet-action sheet-collect" '
        'href="/desk/collect/?loan=LN0000000007&amp;amount=125000.00">Collect</a>'
    ) in html


def test_a_current_loan_shows_no_arrears_its_officer_and_last_payment():
    officer = User(username="c.one", first_name="Collector", last_name="One")
    html = sheet_rows(
        [
            row(
                arrears=Decimal("0.00"),
                dpd=0,
                bucket="CURRENT",
                officer=officer,
                mandate_status="Active",
                last_payment_date=datetime.date(2026, 11, 8),
                last_payment_amount=Decimal("4500.00"),
            )
        ],
        URLS,
    )
    assert 'class="sheet-row bucket-current"' in html
    assert '<div class="sheet-small">Collector One</div>' in html
    assert '<td class="num">&mdash;</td>' in html and "<td>Active</td>" in html
    assert '₹4,500.00<div class="sheet-small">08 Nov 2026</div>' in html


def test_collected_rows_show_their_receipts_and_no_collect_button():
    paid = Collection("01A", "PUN01/2026-27/000123", Decimal("1500.00"), "CASH", "POSTED")
    unnumbered = Collection("01B", "", Decimal("200.00"), "UPI", "RECEIVED")
    failed = Collection("01C", "", Decimal("99.00"), "CHEQUE", "FAILED")
    html = sheet_rows([row(collections=[paid, unnumbered, failed])], URLS)
    assert 'class="sheet-row bucket-sma1 sheet-collected"' in html
    assert (
        '<div class="sheet-receipt"><a href="/r/?number=PUN01/2026-27/000123">'
        "PUN01/2026-27/000123</a> ₹1,500.00</div>"
    ) in html
    assert '<div class="sheet-receipt">UPI ₹200.00</div>' in html
    assert '<div class="sheet-small sheet-not-counted">CHEQUE failed</div>' in html
    assert "sheet-action" not in html and ">Collect</a>" not in html


def test_a_row_whose_only_payment_failed_can_be_collected_again():
    failed = Collection("01C", "PUN01/2026-27/000124", Decimal("99.00"), "CASH", "REVERSED")
    html = sheet_rows([row(collections=[failed])], URLS)
    assert "sheet-collected" not in html
    assert "PUN01/2026-27/000124 reversed</div>" in html and ">Collect</a>" in html


def test_no_rows_write_nothing():
    assert sheet_rows([], URLS) == ""
