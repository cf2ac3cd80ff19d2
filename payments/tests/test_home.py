"""The ledger maintenance banner on every admin and workflow page while maintenance is on,
gone once it is off; the switch page asks before it changes."""

import pytest
from django.test import Client

from payments.services import ledger_switch_set

pytestmark = pytest.mark.django_db

BANNER = 'id="ledger-maintenance-banner"'
SWITCH = "/admin/payments/ledgerswitch/"
PAGES = ["/admin/", "/admin/loans/loanaccount/", "/approvals/", "/reconciliation/dashboard/"]


def test_every_page_shows_the_banner_while_the_ledger_is_in_maintenance(world):
    client = Client()
    client.force_login(world.users["AM"])
    for url in PAGES:
        assert BANNER not in client.get(url).content.decode(), url

    ledger_switch_set(maintenance=True, reason="Year-end close", actor=world.users["OP"])
    for url in PAGES:
        html = client.get(url).content.decode()
        assert BANNER in html and "Reason: Year-end close." in html, url
    assert "Open the switch" not in html  # only for who may change it

    ledger_switch_set(maintenance=False, reason="Closed", actor=world.users["OP"])
    for url in PAGES:
        assert BANNER not in client.get(url).content.decode(), url


def test_the_switch_page_names_what_saving_does(world):
    client = Client()
    client.force_login(world.users["OP"])
    html = client.get(SWITCH, follow=True).content.decode()
    assert 'data-confirm-switch="id_maintenance"' in html
    assert "Put the ledger in maintenance?" in html
    ledger_switch_set(maintenance=True, reason="Upgrade", actor=world.users["OP"])
    html = client.get(SWITCH, follow=True).content.decode()
    assert "End the ledger maintenance?" in html and "Open the switch" in html
