"""Branch staff use the admin in headless Chromium, as a person would."""

from decimal import Decimal

import pytest
from django.urls import reverse

from loans.models import Customer, LoanAccount
from tests.browser import fits_the_window, log_in
from tests.factories import (
    BranchFactory,
    LoanProductFactory,
    UserFactory,
    make_customer,
    make_loan,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_branch_staff_create_a_customer_and_a_loan_and_cannot_open_another_branch(
    live_server, page
):
    branch = BranchFactory(name="Pune Camp")
    staff = UserFactory(role="Branch Staff", home_branch=branch, username="staff.pune")
    LoanProductFactory(code="MSME", name="Small business loan")
    foreign_loan = make_loan(branch=BranchFactory(name="Chennai"))

    log_in(page, live_server, staff)

    page.goto(f"{live_server.url}{reverse('admin:loans_customer_add')}")
    page.fill("#id_name", "Asha Kulkarni")
    page.fill("#id_mobile", "9823012345")
    page.fill("#id_pan", "AKLPK1234Q")
    assert page.locator("#id_branch option:checked").inner_text().endswith("Pune Camp")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    customer = Customer.objects.get(name="Asha Kulkarni")
    assert customer.branch == branch

    page.goto(f"{live_server.url}{reverse('admin:loans_loanaccount_add')}")
    page.click("#id_customer + .select2 .select2-selection")
    page.fill(".select2-search__field", "Asha")
    page.click(".select2-results__option >> text=Asha Kulkarni")
    page.select_option("#id_product", label="MSME Small business loan")
    page.fill("#id_sanctioned_amount", "200000")
    page.fill("#id_disbursed_amount", "200000")
    page.fill("#id_tenure_months", "36")
    page.fill("#id_due_day", "7")
    page.fill("#id_disbursed_on", "2026-11-02")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist .success")
    loan = LoanAccount.objects.get(customer=customer)
    assert loan.instalments.count() == 36

    page.goto(f"{live_server.url}{reverse('admin:loans_loanaccount_changelist')}")
    rows = page.locator("#result_list tbody tr").all_inner_texts()
    assert any(loan.loan_number in row for row in rows)
    assert not any(foreign_loan.loan_number in row for row in rows)

    page.goto(
        f"{live_server.url}{reverse('admin:loans_loanaccount_change', args=[foreign_loan.pk])}"
    )
    assert "Perhaps it was deleted?" in page.locator(".messagelist").inner_text()
    assert foreign_loan.loan_number not in page.content()


def test_branch_staff_find_overdue_loans_by_bucket_and_dpd_and_read_the_dues(live_server, page):
    from django.utils import timezone

    from loans.tests.test_dues import _overdue_loan

    branch = BranchFactory(name="Nashik Road")
    staff = UserFactory(role="Branch Staff", home_branch=branch, username="staff.nashik")
    late = _overdue_loan(45, branch=branch)
    big = {"sanctioned_amount": Decimal("2500000.00"), "disbursed_amount": Decimal("2500000.00")}
    worse = _overdue_loan(  # a long name and a large loan: the widest row a branch has
        95, customer=make_customer(branch=branch, name="Venkatalakshmi Subramanian"), **big
    )
    make_loan(branch=branch, disbursed_on=timezone.localdate())  # current
    elsewhere = _overdue_loan(50, branch=BranchFactory(name="Nagpur"))

    page.set_viewport_size({"width": 1366, "height": 768})
    log_in(page, live_server, staff)

    page.goto(f"{live_server.url}{reverse('admin:loans_loanaccount_changelist')}")
    # the list fits the window beside the sidebar and the filters: no sideways scrolling
    assert fits_the_window(page)
    page.click("#changelist-filter >> text=SMA-1 (31-60)")
    page.wait_for_url("**bucket=SMA1**")
    rows = page.locator("#result_list tbody tr").all_inner_texts()
    assert len(rows) == 1 and late.loan_number in rows[0] and "45" in rows[0]
    assert elsewhere.loan_number not in page.content()

    page.goto(f"{live_server.url}{reverse('admin:loans_loanaccount_changelist')}")
    page.click("#result_list thead th.column-dpd a")  # lowest DPD first
    page.click("#result_list thead th.column-dpd a.toggle")  # then highest first
    page.wait_for_url("**o=-**")
    first = page.locator("#result_list tbody tr").first.inner_text()
    assert worse.loan_number in first and "NPA" in first

    page.click(f"text={worse.loan_number}")
    panel = page.locator("fieldset.dues-panel").inner_text()
    assert "95" in panel and "NPA (90+)" in panel
    assert (worse.next_due_date.strftime("%d %b %Y")) in panel
    assert f"{worse.dues_as_of:%d %b %Y}" in panel
    statuses = page.locator(".field-status_shown").all_inner_texts()
    assert statuses[:4] == ["Overdue"] * 4 and statuses[4] == "Due"


def _send_confirmed(page, selector: str) -> None:
    """Click ``selector``, accept the page's confirmation dialog and wait for the answer."""
    page.click(selector)
    with page.expect_navigation():
        page.click("#confirm-dialog-accept")


def test_staff_ask_for_a_new_mobile_and_the_manager_approves_it_in_the_inbox(live_server, page):
    branch = BranchFactory(name="Nashik Road")
    staff = UserFactory(role="Branch Staff", home_branch=branch, username="staff.nashik")
    manager = UserFactory(role="Branch Manager", home_branch=branch, username="bm.nashik")
    loan = make_loan(branch=branch)
    customer = loan.customer

    log_in(page, live_server, staff)
    customer_url = f"{live_server.url}{reverse('admin:loans_customer_change', args=[customer.pk])}"
    page.goto(customer_url)
    assert page.locator("#customer-loans").get_by_text(loan.loan_number).is_visible()
    assert page.locator("input#id_mobile").count() == 0  # read-only after creation
    page.click("#request-mobile-change")
    page.fill("#id_mobile", "98765")
    page.fill("#id_reason", "The customer changed phones; letter on file")
    _send_confirmed(page, "#reason-form input[type=submit]")  # a confirmation before sending
    assert "10-digit" in page.locator(".errorlist").inner_text()  # a field message
    page.fill("#id_mobile", "+91 91234 56789")
    _send_confirmed(page, "#reason-form input[type=submit]")
    page.wait_for_selector(".messagelist .success")
    assert "waits for a checker" in page.locator(".messagelist").inner_text()
    assert page.locator("#customer-change-pending").is_visible()
    customer.refresh_from_db()
    assert customer.mobile != "9123456789"

    log_in(page, live_server, manager)
    page.goto(f"{live_server.url}{reverse('approvals:inbox')}")
    page.click(f".inbox-entry >> text=Change of mobile of {customer.customer_number}")
    assert "9123456789" in page.locator("#customer-change-values").inner_text()
    _send_confirmed(page, "#decision-form button[value=approve]")  # and before approving
    page.wait_for_selector(".messagelist .success")

    page.goto(customer_url)
    assert "9123456789" in page.locator(".field-mobile").inner_text()
    customer.refresh_from_db()
    assert customer.mobile == "9123456789"
