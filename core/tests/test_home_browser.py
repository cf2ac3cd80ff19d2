"""In Chromium, as the roles that use them: branch staff's start page (today's
collections in the one money format, the search, a 1366 px window), and the confirmations
before irreversible actions: cancelling the dialog changes nothing, accepting does it
(a DCR's submission and approval, a reversal's request and approval, the ledger switch,
with the maintenance banner then on every page)."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest
from payments.models import LedgerSwitch, Posting
from payments.services import payments_post_due
from reconciliation import services as recon
from reconciliation.models import Dcr
from tests.browser import fits_the_window, log_in
from tests.factories import (
    BankingPartnerFactory,
    active_mandate,
    days_ago,
    make_customer,
    make_loan,
    pay,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH = {"width": 1366, "height": 768}


def signed_in(browser, live_server, user):
    page = browser.new_page(viewport=WIDTH)
    page.set_default_timeout(15_000)
    log_in(page, live_server, user)
    return page


def confirm(page, selector: str, *, accept: bool, says: str) -> None:
    """Click ``selector``; the dialog must name what will happen; accept or cancel it."""
    page.click(selector)
    dialog = page.locator("#confirm-dialog")
    dialog.wait_for(state="visible")
    assert says in page.inner_text("#confirm-dialog-message")
    if accept:
        # The accepted form posts and the browser follows the redirect: wait for that
        # navigation, not for the current page's (long finished) load.
        with page.expect_navigation():
            page.click("#confirm-dialog-accept")
    else:
        page.click("#confirm-dialog-cancel")
        dialog.wait_for(state="hidden")


def test_branch_staff_start_page_shows_todays_collections_and_finds_a_loan(
    live_server, browser, world
):
    own = world.branches["own"]
    own.cutoff_time = datetime.time(23, 59, 59)
    own.save()
    loan = world.loans["own"]
    pay(loan, "123456.00", day=timezone.localdate())
    staff = world.users["BS"]
    staff.first_name, staff.last_name = "Sunita", "Pawar"
    staff.save()

    page = signed_in(browser, live_server, staff)
    assert page.inner_text("#site-name").endswith("Back-office")
    assert page.inner_text("#start-today .start-today-amount") == "₹1,23,456.00"
    assert page.inner_text("#start-today .start-today-count") == "1"
    assert fits_the_window(page)
    page.fill("#start-find-q", loan.loan_number)
    page.click("#start-find button[type=submit]")
    # the desk's search opens the only loan it finds at the counter's collect page
    page.wait_for_url(f"**{reverse('desk:collect')}?loan={loan.loan_number}")
    assert loan.loan_number in page.inner_text("#collect-loan h2")


def test_a_dcr_is_submitted_and_approved_only_after_a_confirmation(live_server, browser, world):
    own = world.branches["own"]
    pay(world.loans["own"], "1500.00")
    dcr = recon.dcr_build(branch_id=own.pk, business_date=days_ago(1))
    url = f"{live_server.url}{reverse('reconciliation:dcr', args=[dcr.pk])}"

    manager = signed_in(browser, live_server, world.users["BM"])
    manager.goto(url)
    confirm(manager, "#submit-form button[type=submit]", accept=False, says="Submit DCR")
    assert Dcr.objects.get(pk=dcr.pk).status == Dcr.Status.DRAFT
    confirm(manager, "#submit-form button[type=submit]", accept=True, says="frozen")
    assert Dcr.objects.get(pk=dcr.pk).status == Dcr.Status.SUBMITTED

    approver = signed_in(browser, live_server, world.users["AM"])
    approver.goto(url)
    confirm(approver, "#decision-form button[value=approve]", accept=False, says="Approve DCR")
    assert Dcr.objects.get(pk=dcr.pk).status == Dcr.Status.SUBMITTED
    confirm(approver, "#decision-form button[value=approve]", accept=True, says="final")
    approver.wait_for_selector(".messagelist .success")
    assert Dcr.objects.get(pk=dcr.pk).status == Dcr.Status.APPROVED


def test_a_reversal_is_requested_and_approved_only_after_a_confirmation(
    live_server, browser, world
):
    pay(world.loans["own"], "2500.00")
    assert payments_post_due() == {"posted": 1}
    posting = Posting.objects.get()

    manager = signed_in(browser, live_server, world.users["BM"])
    manager.goto(f"{live_server.url}{reverse('admin:payments_posting_change', args=[posting.pk])}")
    manager.click(".reversal-request-link")
    manager.fill("textarea[name=reason]", "The cheque bounced")
    confirm(manager, "#reversal-form input[type=submit]", accept=False, says="₹2,500.00")
    assert not ApprovalRequest.objects.exists()
    confirm(manager, "#reversal-form input[type=submit]", accept=True, says="undone")
    request = ApprovalRequest.objects.get()

    finance = signed_in(browser, live_server, world.users["FI"])
    finance.goto(f"{live_server.url}{reverse('approvals:detail', args=[request.pk])}")
    confirm(
        finance, "#decision-form button[value=approve]", accept=False, says=request.subject_line
    )
    assert request.subject_line.startswith(f"{request.get_kind_display()}: ")
    assert Posting.objects.get(pk=posting.pk).reversed_at is None
    confirm(finance, "#decision-form button[value=approve]", accept=True, says="cannot be undone")
    finance.wait_for_selector(".messagelist .success")
    assert Posting.objects.get(pk=posting.pk).reversed_at is not None


def test_the_ledger_switch_asks_first_and_the_banner_follows(live_server, browser, world):
    people = world.people
    for n in range(3):  # as the list shows them: active (with a UMRN), long names
        customer = make_customer(branch=world.branches["own"], name="Venkata Lakshmi Narasimha Rao")
        partner = BankingPartnerFactory(code=f"HDFC{n}", name="HDFC Bank Limited, Fort Branch")
        active_mandate(
            make_loan(customer=customer, branch=world.branches["own"]),
            people,
            banking_partner=partner,
        )
    ops = signed_in(browser, live_server, world.users["OP"])
    ops.goto(f"{live_server.url}/admin/payments/ledgerswitch/")
    ops.check("#id_maintenance")
    ops.fill("#id_reason", "Quarter-end close")
    confirm(ops, "input[name=_save]", accept=False, says="Put the ledger in maintenance?")
    assert not LedgerSwitch.objects.filter(maintenance=True).exists()
    confirm(ops, "input[name=_save]", accept=True, says="nothing is posted")
    ops.wait_for_selector("#ledger-maintenance-banner")
    assert LedgerSwitch.objects.get().maintenance

    staff = signed_in(browser, live_server, world.users["BS"])
    assert "Quarter-end close" in staff.inner_text("#ledger-maintenance-banner")
    staff.goto(f"{live_server.url}/admin/mandates/mandate/")
    staff.wait_for_selector("#ledger-maintenance-banner")
    assert fits_the_window(staff)  # the mandate list at 1366 px
