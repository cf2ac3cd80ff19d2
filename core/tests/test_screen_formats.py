"""One money format (Indian grouping) and one date/time format (IST) on the existing
screens: a DCR's page and the approvals inbox, and the admin lists' money and date columns."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from core.templatetags.formats import ist
from payments.services import payments_post_due
from reconciliation import services as recon
from tests.factories import days_ago, pay

pytestmark = pytest.mark.django_db


def as_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_dcr_page_and_the_inbox_show_indian_amounts_and_ist_times(world):
    own = world.branches["own"]
    pay(world.loans["own"], "123456.00")
    dcr = recon.dcr_build(branch_id=own.pk, business_date=days_ago(1))
    recon.dcr_submit(dcr_id=dcr.pk, actor=world.users["BM"])
    dcr.refresh_from_db()
    approver = as_user(world.users["AM"])

    html = approver.get(reverse("reconciliation:dcr", args=[dcr.pk])).content.decode()
    assert "₹1,23,456.00 in 1 receipt(s)" in html
    assert ist(dcr.computed_at) in html  # 07 Dec 2026, 14:05 IST
    assert "123456.00" not in html and "123,456" not in html

    inbox = approver.get(reverse("approvals:inbox")).content.decode()
    assert ist(dcr.submitted_at) in inbox
    assert timezone.localtime(dcr.submitted_at).strftime("%Y-%m-%d %H:%M") not in inbox


def test_admin_list_money_columns_are_right_aligned_in_the_one_format(world):
    pay(world.loans["own"], "123456.00")
    assert payments_post_due() == {"posted": 1}
    html = as_user(world.users["FI"]).get("/admin/payments/posting/").content.decode()
    cell = re.search(r'<td class="field-money_amount">(.*?)</td>', html)
    assert cell and cell.group(1) == '<span class="money">₹1,23,456.00</span>'
    assert 'th scope="col" class="column-money_amount"' in html
    # Django's own date columns in the one format too (config/formats)
    assert re.search(
        r'<td class="field-posted_at nowrap">\d\d [A-Z][a-z]{2} \d{4}, \d\d:\d\d IST</td>', html
    )
    css = as_user(world.users["FI"]).get("/admin/").content.decode()
    assert 'td[class*="field-money_"] { text-align: right;' in css
