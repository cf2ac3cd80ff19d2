"""The issue's reproduction in headless Chromium: staff submit a mandate, the manager
returns it, changes its account number in the admin, staff resubmit, and the manager's
approval is refused; another checker approves."""

import pytest
from django.urls import reverse

from accounts.models import User
from mandates.models import Mandate
from tests.browser import log_in
from tests.factories import BranchFactory, UserFactory, draft_mandate, make_loan

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _signed_in(browser, live_server, user):
    page = browser.new_context().new_page()  # a context of its own: its tabs share the login
    page.set_default_timeout(15_000)
    log_in(page, live_server, user)
    return page


def _submit_from_the_list(page, live_server, mandate) -> None:
    page.goto(f"{live_server.url}{reverse('admin:mandates_mandate_changelist')}")
    page.check(f"input[name=_selected_action][value='{mandate.pk}']")
    page.select_option("select[name=action]", "submit_for_approval")
    page.click("button[name=index]")
    page.wait_for_selector(".messagelist .success")


def test_the_manager_who_changed_the_account_number_cannot_approve_it(live_server, browser):
    branch = BranchFactory(name="Kolhapur")
    loan = make_loan(branch=branch)
    staff = UserFactory(role="Branch Staff", home_branch=branch, username="staff.kop")
    manager = UserFactory(role="Branch Manager", home_branch=branch, username="manager.kop")
    ops = UserFactory(role="Operations", level=User.Level.HEAD_OFFICE, username="ops.ho")
    mandate = draft_mandate(loan, staff, account_number="123456789012")
    review_url = f"{live_server.url}{reverse('mandates:review', args=[mandate.pk])}"

    staff_page = _signed_in(browser, live_server, staff)
    _submit_from_the_list(staff_page, live_server, mandate)

    # The manager opens the review page (and leaves this tab open) ...
    stale = _signed_in(browser, live_server, manager)
    stale.goto(review_url)
    assert stale.locator("#decision-form button[value=approve]").count() == 1
    # ... returns the mandate from another tab ...
    page = stale.context.new_page()
    page.set_default_timeout(15_000)
    page.goto(review_url)
    page.fill("#decision-form textarea[name=remarks]", "Check the account number")
    page.click("#decision-form button[value=return]")
    page.click("#confirm-dialog-accept")  # the confirmation
    page.wait_for_selector(".messagelist .success")
    # ... and changes its account number in the admin.
    page.goto(f"{live_server.url}{reverse('admin:mandates_mandate_change', args=[mandate.pk])}")
    page.fill("#id_account_number", "998877665544")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    assert Mandate.objects.get(pk=mandate.pk).account_number == "998877665544"

    _submit_from_the_list(staff_page, live_server, mandate)

    # The manager's approval from the tab still open is refused, with the reason.
    stale.click("#decision-form button[value=approve]")
    stale.click("#confirm-dialog-accept")  # the confirmation
    stale.wait_for_selector(".messagelist .error")
    assert (
        "You changed this mandate since its last decision; another person must approve it."
        in stale.inner_text(".messagelist")
    )
    assert Mandate.objects.get(pk=mandate.pk).status == Mandate.Status.PENDING_APPROVAL
    # A fresh look shows no decision form, says why, and the inbox does not offer it.
    assert stale.locator("#decision-form").count() == 0
    assert "You changed this mandate" in stale.inner_text("#decision-note")
    assert stale.text_content("#approvals-link") == "Approvals"

    # Another checker finds it in the inbox and approves it.
    checker = _signed_in(browser, live_server, ops)
    assert checker.text_content("#approvals-link") == "Approvals (1)"
    checker.click("#approvals-link")
    checker.click(f"a[href='{reverse('mandates:review', args=[mandate.pk])}']")
    checker.fill("#decision-form textarea[name=remarks]", "Account verified with the bank")
    checker.click("#decision-form button[value=approve]")
    checker.click("#confirm-dialog-accept")  # the confirmation
    checker.wait_for_selector(".messagelist .success")
    approved = Mandate.objects.get(pk=mandate.pk)
    assert (approved.status, approved.checker, approved.account_number) == (
        Mandate.Status.APPROVED,
        ops,
        "998877665544",
    )
