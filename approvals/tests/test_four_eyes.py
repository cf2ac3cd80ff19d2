"""Four-eyes on maker-checker requests (payment reversal, charge waiver, mandate suspension
and cancellation): the request is the subject; its maker can neither approve nor return
it, even holding the checker's permission, and does not find it in their inbox; a maker
of an earlier, decided request for the same thing may decide the next one."""

from datetime import date

import pytest
from django.db import IntegrityError, transaction

from accounts.models import User
from approvals.exceptions import MakerCannotCheck
from approvals.models import ApprovalRequest, SubjectContribution
from approvals.selectors import approval_requests_waiting, inbox_entries
from approvals.services import approval_decide, subject_of
from loans.services import loan_charge_waiver_request
from mandates.services import mandate_stop_request
from payments.services import payment_ingest, payment_reversal_request, payments_post_due
from tests.factories import (
    BranchFactory,
    UserFactory,
    active_mandate,
    actors,
    bounce_charge,
    make_loan,
    payment,
)

pytestmark = pytest.mark.django_db


def _reversal(branch):
    loan = make_loan(branch=branch)
    txn_id = payment_ingest(
        payment=payment(loan, amount="5000.00"),
        idempotency_key=f"four-eyes-{loan.pk}",
        principal=UserFactory(is_superuser=True),
        source="test",
    ).body["txn_id"]
    payments_post_due()

    def ask(actor):
        return payment_reversal_request(txn_id=txn_id, reason="cheque bounced", actor=actor)

    def checker():  # Finance may ask for reversals and approve them
        return UserFactory(role="Finance", level=User.Level.HEAD_OFFICE)

    return ask, checker


def _waiver(branch):
    charge = bounce_charge(make_loan(branch=branch))

    def ask(actor):
        return loan_charge_waiver_request(charge_id=charge.pk, reason="bank error", actor=actor)

    def checker():  # an area manager may ask for waivers and approve them
        return UserFactory(role="Area Manager", level=User.Level.AREA, home_area=branch.area)

    return ask, checker


def _mandate_stop(action):
    def build(branch):
        loan = make_loan(branch=branch, disbursed_on=date(2026, 10, 1), tenure_months=12)
        mandate = active_mandate(loan, actors(branch))

        def ask(actor):
            return mandate_stop_request(
                mandate_id=mandate.pk, action=action, reason="customer dispute", actor=actor
            )

        def checker():  # operations may ask for a stop and approve it
            return UserFactory(role="Operations", level=User.Level.HEAD_OFFICE)

        return ask, checker

    return build


SUBJECTS = {
    "reversal": _reversal,
    "waiver": _waiver,
    "suspension": _mandate_stop("SUSPEND"),
    "cancellation": _mandate_stop("CANCEL"),
}


@pytest.fixture(params=list(SUBJECTS))
def subject(request):
    branch = BranchFactory()
    ask, checker = SUBJECTS[request.param](branch)
    return {"ask": ask, "checker": checker}


def test_the_maker_cannot_decide_their_request_even_with_the_checkers_permission(subject):
    maker, other = subject["checker"](), subject["checker"]()
    request = subject["ask"](maker)
    for approve in (True, False):
        with pytest.raises(MakerCannotCheck, match="You made this request") as caught:
            approval_decide(request_id=request.pk, approve=approve, actor=maker, remarks="no")
        assert caught.value.code == "maker_cannot_check"
    assert request not in approval_requests_waiting(user=maker)
    assert all(entry.subject != request.entity_repr for entry in inbox_entries(maker))

    assert request in approval_requests_waiting(user=other)
    decided = approval_decide(request_id=request.pk, approve=True, actor=other, remarks="ok")
    assert (decided.status, decided.checker) == (ApprovalRequest.Status.APPROVED, other)


def test_the_maker_of_an_earlier_returned_request_may_decide_the_next(subject):
    first, returner, second = subject["checker"](), subject["checker"](), subject["checker"]()
    earlier = subject["ask"](first)
    approval_decide(request_id=earlier.pk, approve=False, actor=returner, remarks="proof?")
    request = subject["ask"](second)
    assert request in approval_requests_waiting(user=first)
    decided = approval_decide(request_id=request.pk, approve=True, actor=first, remarks="ok")
    assert decided.status == ApprovalRequest.Status.APPROVED


def test_the_database_refuses_a_decision_row_for_the_requests_maker(subject):
    maker = subject["checker"]()
    request = subject["ask"](maker)
    with pytest.raises(IntegrityError), transaction.atomic():
        SubjectContribution.objects.create(
            subject=subject_of(request), round=0, user=maker, kind=SubjectContribution.Kind.DECIDED
        )


def test_a_branch_manager_request_is_decided_by_the_checker_role():
    """The usual makers and checkers are unchanged: a branch manager asks, Finance decides."""
    branch = BranchFactory()
    ask, checker = _reversal(branch)
    request = ask(UserFactory(role="Branch Manager", home_branch=branch))
    approval_decide(request_id=request.pk, approve=True, actor=checker(), remarks="ok")
