"""An approver approves a DCR from the approvals inbox in headless Chromium; its maker
cannot."""

import pytest
from django.urls import reverse

from reconciliation import services
from reconciliation.models import Dcr
from tests.browser import log_in
from tests.factories import UserFactory, branch_with_loan, days_ago, pay

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_approver_approves_a_dcr_from_the_inbox(live_server, browser):
    branch, loan = branch_with_loan(name="Nashik Road")
    pay(loan, "1200.00")
    pay(loan, "300.50", mode="UPI", collector="Agent Z")
    dcr = services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    maker = UserFactory(role="Branch Manager", home_branch=branch)
    services.dcr_submit(dcr_id=dcr.pk, actor=maker)
    approver = UserFactory(role="Area Manager", home_area=branch.area)
    dcr_url = reverse("reconciliation:dcr", args=[dcr.pk])

    # the maker sees the DCR waiting, but no decision for them
    maker_page = browser.new_page()
    log_in(maker_page, live_server, maker)
    maker_page.goto(f"{live_server.url}{dcr_url}")
    assert "Submitted" in maker_page.inner_text("#content")
    assert maker_page.locator("#decision-form button[value=approve]").count() == 0

    page = browser.new_page()
    log_in(page, live_server, approver)
    assert page.text_content("#approvals-link") == "Approvals (1)"
    page.click("#approvals-link")
    page.click(f"a[href='{dcr_url}']")
    content = page.inner_text("#content")
    assert "1,500.50" in content and "Agent Z" in content  # the figures and collectors
    page.fill("#decision-form textarea[name=remarks]", "Cash matches the slips")
    page.click("#decision-form button[value=approve]")
    page.click("#confirm-dialog-accept")  # the confirmation
    page.wait_for_selector(".messagelist .success")
    assert "approved" in page.inner_text(".messagelist")

    dcr.refresh_from_db()
    assert (dcr.status, dcr.decided_by, dcr.remarks) == (
        Dcr.Status.APPROVED,
        approver,
        "Cash matches the slips",
    )
    assert page.text_content("#approvals-link") == "Approvals"  # nothing waits any more
