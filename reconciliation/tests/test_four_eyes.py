"""Four-eyes on the DCR and the DBS: not the submitter, and for a DBS nobody who recorded,
changed or deleted one of its deposits since its last decision; a part in an earlier,
decided round does not count; the inbox and the decision page agree with the services."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import User
from approvals.exceptions import MakerCannotCheck
from approvals.tests.races import change_racing_decision
from reconciliation import services
from reconciliation.models import Dbs, Dcr, Deposit
from reconciliation.selectors import dbss_waiting_for, dcrs_waiting_for
from tests.factories import (
    UserFactory,
    branch_with_loan,
    collection_account,
    days_ago,
    deposit,
    pay,
)

pytestmark = pytest.mark.django_db


def finance_who_records_deposits() -> User:
    """A finance user who was also given the branch staff's deposit permissions."""
    user = UserFactory(role="Finance")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="reconciliation",
            codename__in=["add_deposit", "change_deposit", "delete_deposit"],
        )
    )
    return User.objects.get(pk=user.pk)  # without the cached permissions


@pytest.fixture
def day():
    branch, loan = branch_with_loan()
    pay(loan, "1000.00")
    services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    account = collection_account()
    deposit(branch, account, "600.00", slip="S-1")
    dbs = Dbs.objects.get(branch=branch, business_date=days_ago(1))
    return {
        "branch": branch,
        "account": account,
        "dbs": dbs,
        "manager": UserFactory(role="Branch Manager", home_branch=branch),
    }


# --- DBS ------------------------------------------------------------------------------


def test_a_checker_who_recorded_a_deposit_cannot_decide_the_dbs(day):
    checker, other = finance_who_records_deposits(), UserFactory(role="Finance")
    deposit(day["branch"], day["account"], "100.00", slip="S-2", actor=checker)
    services.dbs_submit(dbs_id=day["dbs"].pk, actor=day["manager"])

    with pytest.raises(MakerCannotCheck, match="You changed this DBS since its last decision"):
        services.dbs_approve(dbs_id=day["dbs"].pk, actor=checker)
    with pytest.raises(MakerCannotCheck):
        services.dbs_return(dbs_id=day["dbs"].pk, actor=checker, remarks="slip?")
    assert day["dbs"] not in dbss_waiting_for(user=checker)
    page = Client()
    page.force_login(checker)
    html = page.get(f"/reconciliation/dbs/{day['dbs'].pk}/").content.decode()
    assert 'id="decision-form"' not in html and "You changed this DBS" in html

    assert day["dbs"] in dbss_waiting_for(user=other)
    approved = services.dbs_approve(dbs_id=day["dbs"].pk, actor=other)
    assert approved.status == "APPROVED"


@pytest.mark.parametrize("change", ["update", "delete"])
def test_changing_or_deleting_a_deposit_after_a_return_counts_too(day, change):
    checker, other = finance_who_records_deposits(), UserFactory(role="Finance")
    dbs_id = day["dbs"].pk
    services.dbs_submit(dbs_id=dbs_id, actor=day["manager"])
    services.dbs_return(dbs_id=dbs_id, actor=other, remarks="slip S-1 says 60.00")
    recorded = Deposit.objects.get(slip_number="S-1")
    if change == "update":
        services.deposit_update(deposit_id=recorded.pk, actor=checker, amount=Decimal("60.00"))
    else:
        services.deposit_delete(deposit_id=recorded.pk, actor=checker)
    services.dbs_submit(dbs_id=dbs_id, actor=day["manager"])
    with pytest.raises(MakerCannotCheck):
        services.dbs_approve(dbs_id=dbs_id, actor=checker)
    services.dbs_approve(dbs_id=dbs_id, actor=other)


def test_a_deposit_recorded_before_the_last_decision_does_not_bar_the_next_round(day):
    checker, other = finance_who_records_deposits(), UserFactory(role="Finance")
    deposit(day["branch"], day["account"], "100.00", slip="S-2", actor=checker)  # round 0
    services.dbs_submit(dbs_id=day["dbs"].pk, actor=day["manager"])
    services.dbs_return(dbs_id=day["dbs"].pk, actor=other, remarks="count again")
    services.dbs_submit(dbs_id=day["dbs"].pk, actor=day["manager"])  # round 1: nothing of theirs
    assert day["dbs"] in dbss_waiting_for(user=checker)
    assert services.dbs_approve(dbs_id=day["dbs"].pk, actor=checker).status == "APPROVED"


def test_the_dbs_submitter_cannot_decide_it(day):
    submitter = finance_who_records_deposits()
    submitter.user_permissions.add(Permission.objects.get(codename="submit_dbs"))
    submitter = User.objects.get(pk=submitter.pk)
    services.dbs_submit(dbs_id=day["dbs"].pk, actor=submitter)
    with pytest.raises(MakerCannotCheck, match="You submitted this DBS"):
        services.dbs_approve(dbs_id=day["dbs"].pk, actor=submitter)
    assert day["dbs"] not in dbss_waiting_for(user=submitter)


# --- DCR ------------------------------------------------------------------------------


def test_dcr_the_submitter_cannot_decide_but_an_earlier_rounds_submitter_can(day):
    dcr = Dcr.objects.get(branch=day["branch"], business_date=days_ago(1))
    first, second = (
        UserFactory(role="Area Manager", home_area=day["branch"].area),
        UserFactory(role="Area Manager", home_area=day["branch"].area),
    )
    services.dcr_submit(dcr_id=dcr.pk, actor=first)
    with pytest.raises(MakerCannotCheck, match="You submitted this DCR"):
        services.dcr_approve(dcr_id=dcr.pk, actor=first)
    assert dcr not in dcrs_waiting_for(user=first)
    services.dcr_return(dcr_id=dcr.pk, actor=second, remarks="agent B's receipts")
    services.dcr_submit(dcr_id=dcr.pk, actor=day["manager"])  # round 1: not the first's
    assert dcr in dcrs_waiting_for(user=first)
    assert services.dcr_approve(dcr_id=dcr.pk, actor=first).status == "APPROVED"


# --- A deposit racing the decision ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_deposit_racing_the_approval_never_lets_its_recorder_approve_the_dbs():
    """After a return, the would-be checker records a deposit and the manager resubmits in
    one transaction held open while the checker's approval waits for the DBS row: the
    approval then sees the deposit's recorder and refuses."""
    branch, loan = branch_with_loan()
    pay(loan, "1000.00")
    services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    account = collection_account()
    deposit(branch, account, "600.00", slip="R-1")
    dbs = Dbs.objects.get(branch=branch, business_date=days_ago(1))
    maker, checker, other = (
        UserFactory(role="Branch Manager", home_branch=branch),
        finance_who_records_deposits(),
        UserFactory(role="Finance"),
    )
    services.dbs_submit(dbs_id=dbs.pk, actor=maker)
    services.dbs_return(dbs_id=dbs.pk, actor=other, remarks="one slip is missing")

    def record_and_resubmit():
        deposit(branch, account, "50.00", slip="R-2", actor=checker)
        services.dbs_submit(dbs_id=dbs.pk, actor=maker)

    def approve():
        services.dbs_approve(dbs_id=dbs.pk, actor=checker)

    assert change_racing_decision(record_and_resubmit, approve) == {
        "change": "done",
        "decide": "refused",
    }
    dbs.refresh_from_db()
    assert (dbs.status, dbs.deposits_total) == ("SUBMITTED", Decimal("650.00"))
