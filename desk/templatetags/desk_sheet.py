"""The collection sheet's rows, written out in Python: ``{% sheet_rows rows urls %}``.

A row shows about forty values (names, amounts, dates, links); through the template
language each is a variable lookup and a filter, which made the rows about half of the
template's time on a 25-row page, and most of a printed sheet of 2,000 rows. The markup is
the template's as it was (classes and ids the tests and the print stylesheet rely on);
values are escaped as autoescape would, money and dates in the one format
(``core.money.inr``, ``formats.day``).
"""

from __future__ import annotations

from urllib.parse import quote

from django import template
from django.utils.html import conditional_escape as esc
from django.utils.safestring import SafeString, mark_safe

from core.money import inr
from core.templatetags.formats import day

register = template.Library()

DASH = "&mdash;"


@register.simple_tag
def sheet_rows(rows, urls) -> SafeString:
    """Every row of a sheet page (``desk.sheet_selectors.SheetRow``), as one safe string."""
    loans_url, collect_url = esc(urls["loans"]), esc(urls["collect"])
    receipt_url = esc(urls["receipt_find"])
    return mark_safe(  # noqa: S308 - every value below is escaped
        "".join(_row(row, loans_url, collect_url, receipt_url) for row in rows)
    )


def _row(row, loans_url: str, collect_url: str, receipt_url: str) -> str:
    loan = row.loan
    customer = loan.customer
    number = esc(loan.loan_number)
    mobile = esc(customer.mobile)
    collected = row.collected
    officer = (
        f'<div class="sheet-small">{esc(row.collector_name)}</div>' if row.collector_name else ""
    )
    co = (
        f'<div class="sheet-small sheet-co">with {", ".join(esc(n) for n in row.co_borrowers)}'
        "</div>"
        if row.co_borrowers
        else ""
    )
    arrears = esc(inr(loan.arrears)) if loan.arrears else DASH
    if loan.last_payment_date:
        last = (
            f'{esc(inr(loan.last_payment_amount))}<div class="sheet-small">'
            f"{esc(day(loan.last_payment_date))}</div>"
        )
    else:
        last = DASH
    cells = [
        f'<td class="nowrap"><a href="{loans_url}{loan.pk}/change/">{number}</a>{officer}</td>',
        f"<td>{esc(customer.name)}{co}</td>",
        f'<td class="nowrap"><a href="tel:+91{mobile}">{mobile}</a></td>',
        f'<td class="nowrap">{esc(day(loan.next_due_date))}</td>',
        f'<td class="num sheet-due">{esc(inr(loan.amount_due))}</td>',
        f'<td class="num">{arrears}</td>',
        f'<td class="num">{loan.dpd}</td>',
        f'<td class="nowrap">{esc(row.bucket_label)}</td>',
        f"<td>{esc(row.mandate_status) if row.mandate_status else DASH}</td>",
        f'<td class="nowrap">{last}</td>',
        f'<td class="sheet-collect-col">{_collected(row, loan, collect_url, receipt_url)}</td>',
    ]
    state = " sheet-collected" if collected else ""
    return (
        f'<tr class="sheet-row bucket-{esc(loan.bucket.lower())}{state}" data-loan="{number}">'
        f"{''.join(cells)}</tr>\n"
    )


def _collected(row, loan, collect_url: str, receipt_url: str) -> str:
    parts = []
    for c in row.collected:
        if c.receipt_number:
            found = f"{receipt_url}?number={esc(quote(c.receipt_number, safe='/'))}"
            what = f'<a href="{found}">{esc(c.receipt_number)}</a>'
        else:
            what = esc(c.mode)
        parts.append(f'<div class="sheet-receipt">{what} {esc(inr(c.amount))}</div>')
    for c in row.not_counted:
        parts.append(
            f'<div class="sheet-small sheet-not-counted">{esc(c.receipt_number or c.mode)}'
            f" {esc(c.status.lower())}</div>"
        )
    if not row.collected:
        parts.append(
            f'<a class="button sheet-action sheet-collect" href="{collect_url}?loan='
            f'{esc(quote(loan.loan_number, safe="/"))}&amp;amount={loan.amount_due:.2f}">'
            "Collect</a>"
        )
    return "".join(parts)
