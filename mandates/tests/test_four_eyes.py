"""Four-eyes on mandate registration: whoever created a mandate, or changed or submitted it
since its last decision, cannot approve or return it; the edit in the admin counts, and
an edit racing a decision never lets the editor approve their own change."""

import re
from datetime import date

import pytest
from django.db import IntegrityError, transaction
from django.test import Client

from approvals.exceptions import MakerCannotCheck
from approvals.models import SubjectContribution
from approvals.selectors import inbox_entries
from approvals.tests.races import change_racing_decision
from core.workflow import InvalidTransition
from mandates import services
from mandates.exceptions import MandateError
from mandates.models import Mandate
from mandates.selectors import mandates_waiting_for
from tests.factories import BranchFactory, UserFactory, actors, draft_mandate, make_loan

pytestmark = pytest.mark.django_db

C = SubjectContribution.Kind


@pytest.fixture
def four_eyes(world):
    """The loan of ``own`` and its people, with a second branch manager."""
    people = dict(world.people)
    people["manager2"] = UserFactory(role="Branch Manager", home_branch=world.branches["own"])
    return world.loans["own"], people


def _admin_edit(user, mandate, **changes) -> None:
    """What the manager does in the admin: change a draft's details on its change page."""
    client = Client()
    client.force_login(user)
    url = f"/admin/mandates/mandate/{mandate.pk}/change/"
    html = client.get(url).content.decode()
    management = dict(
        re.findall(
            r'name="([a-z]+-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)"[^>]*value="(\d*)"', html
        )
    )
    data = {
        "loan": mandate.loan_id,
        "payer": mandate.payer_id,
        "bank_name": mandate.bank_name,
        "account_number": mandate.account_number,
        "ifsc": mandate.ifsc,
        "account_type": mandate.account_type,
        "max_amount": str(mandate.max_amount),
        "frequency": mandate.frequency,
        "start_date": mandate.start_date.isoformat(),
        "end_date": mandate.end_date.isoformat(),
        "banking_partner": mandate.banking_partner_id,
        "mandate_type": mandate.mandate_type,
        **management,
        **changes,
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]


def _returned_then_edited(loan, people, editor):
    """Staff submit, the manager returns, ``editor`` changes the account number in the
    admin, staff resubmit: the issue's reproduction."""
    staff, manager = people["staff"], people["manager"]
    mandate = draft_mandate(loan, staff)
    services.mandate_submit(mandate_id=mandate.pk, actor=staff)
    services.mandate_return(mandate_id=mandate.pk, actor=manager, remarks="check the account")
    _admin_edit(editor, Mandate.objects.get(pk=mandate.pk), account_number="998877665544")
    services.mandate_submit(mandate_id=mandate.pk, actor=staff)
    return mandate


def test_the_editor_since_the_last_decision_cannot_approve_nor_return(four_eyes):
    loan, people = four_eyes
    manager = people["manager"]
    mandate = _returned_then_edited(loan, people, manager)
    assert Mandate.objects.get(pk=mandate.pk).account_number == "998877665544"

    with pytest.raises(MakerCannotCheck, match="You changed this mandate since its last decision"):
        services.mandate_approve(mandate_id=mandate.pk, actor=manager)
    with pytest.raises(MakerCannotCheck) as caught:
        services.mandate_return(mandate_id=mandate.pk, actor=manager, remarks="again")
    assert caught.value.code == "maker_cannot_check"
    assert mandate not in mandates_waiting_for(user=manager)
    assert all(entry.source != "mandates" for entry in inbox_entries(manager))

    # someone else approves it
    assert mandate in mandates_waiting_for(user=people["ops"])
    approved = services.mandate_approve(mandate_id=mandate.pk, actor=people["ops"])
    assert approved.status == Mandate.Status.APPROVED and approved.checker == people["ops"]


def test_the_creator_cannot_decide_in_any_round(four_eyes):
    loan, people = four_eyes
    manager, staff = people["manager"], people["staff"]
    mandate = draft_mandate(loan, manager)  # the manager keys it in, staff submit it
    services.mandate_submit(mandate_id=mandate.pk, actor=staff)
    with pytest.raises(MakerCannotCheck, match="You made this mandate"):
        services.mandate_approve(mandate_id=mandate.pk, actor=manager)
    services.mandate_return(mandate_id=mandate.pk, actor=people["manager2"], remarks="IFSC?")
    services.mandate_submit(mandate_id=mandate.pk, actor=staff)
    with pytest.raises(MakerCannotCheck, match="You made this mandate"):
        services.mandate_approve(mandate_id=mandate.pk, actor=manager)
    assert mandate not in mandates_waiting_for(user=manager)
    services.mandate_approve(mandate_id=mandate.pk, actor=people["manager2"])


def test_a_contributor_from_before_the_last_decision_can_decide_the_next_round(four_eyes):
    loan, people = four_eyes
    manager, staff = people["manager"], people["staff"]
    mandate = _returned_then_edited(loan, people, manager)  # the manager's edit: round 1
    services.mandate_return(mandate_id=mandate.pk, actor=people["ops"], remarks="payer?")
    services.mandate_submit(mandate_id=mandate.pk, actor=staff)  # round 2: not the manager's
    assert mandate in mandates_waiting_for(user=manager)
    approved = services.mandate_approve(mandate_id=mandate.pk, actor=manager)
    assert approved.status == Mandate.Status.APPROVED
    rows = set(
        SubjectContribution.objects.filter(subject=f"mandates.mandate#{mandate.pk}").values_list(
            "round", "user", "kind"
        )
    )
    assert rows == {
        (0, staff.pk, C.CREATED),
        (0, manager.pk, C.DECIDED),
        (1, staff.pk, C.CREATED),
        (1, manager.pk, C.CHANGED),
        (1, people["ops"].pk, C.DECIDED),
        (2, staff.pk, C.CREATED),
        (2, manager.pk, C.DECIDED),
        (3, staff.pk, C.CREATED),  # the creator stays refused, whatever comes next
    }


def test_a_refused_decision_leaves_nothing_behind(four_eyes):
    loan, people = four_eyes
    mandate = _returned_then_edited(loan, people, people["manager"])
    decided = SubjectContribution.objects.filter(kind=C.DECIDED).count()
    with pytest.raises(MakerCannotCheck):
        services.mandate_approve(mandate_id=mandate.pk, actor=people["manager"])
    assert SubjectContribution.objects.filter(kind=C.DECIDED).count() == decided
    assert Mandate.objects.get(pk=mandate.pk).status == Mandate.Status.PENDING_APPROVAL


def test_an_edit_that_changes_nothing_is_no_contribution(four_eyes):
    loan, people = four_eyes
    staff, manager = people["staff"], people["manager"]
    mandate = draft_mandate(loan, staff)
    services.mandate_update(
        mandate_id=mandate.pk, actor=manager, account_number=mandate.account_number
    )
    services.mandate_submit(mandate_id=mandate.pk, actor=staff)
    services.mandate_approve(mandate_id=mandate.pk, actor=manager)


def test_only_a_draft_changes_and_only_its_details(four_eyes):
    loan, people = four_eyes
    staff = people["staff"]
    mandate = draft_mandate(loan, staff)
    with pytest.raises(MandateError, match="Not a mandate detail: status"):
        services.mandate_update(mandate_id=mandate.pk, actor=staff, status="APPROVED")
    services.mandate_submit(mandate_id=mandate.pk, actor=staff)
    with pytest.raises(InvalidTransition) as caught:
        services.mandate_update(mandate_id=mandate.pk, actor=staff, ifsc="SBIN0009999")
    assert caught.value.code == "not_draft"
    assert Mandate.objects.get(pk=mandate.pk).ifsc == "SBIN0001234"


def test_the_database_refuses_a_decision_by_a_contributor_of_the_round(four_eyes):
    loan, people = four_eyes
    mandate = _returned_then_edited(loan, people, people["manager"])
    with pytest.raises(IntegrityError), transaction.atomic():
        SubjectContribution.objects.create(
            subject=f"mandates.mandate#{mandate.pk}",
            round=1,
            user=people["manager"],
            kind=C.DECIDED,
        )


@pytest.mark.django_db(transaction=True)
def test_an_edit_racing_the_approval_never_lets_the_editor_approve_it():
    """The manager's edit and the staff's resubmission commit in one transaction that is
    held open while the manager's approval waits for the row: when it gets the row, the
    mandate is pending again and the approval must see the edit (it is refused)."""
    branch = BranchFactory()
    loan = make_loan(branch=branch, disbursed_on=date(2026, 10, 1), tenure_months=12)
    people = actors(branch)
    staff, manager = people["staff"], people["manager"]
    outcomes = []
    for attempt in range(3):
        mandate = draft_mandate(loan, staff, account_number=f"12345678901{attempt}")
        services.mandate_submit(mandate_id=mandate.pk, actor=staff)
        services.mandate_return(mandate_id=mandate.pk, actor=manager, remarks="check")

        def edit_and_resubmit(mandate_id=mandate.pk):
            services.mandate_update(
                mandate_id=mandate_id, actor=manager, account_number="998877665544"
            )
            services.mandate_submit(mandate_id=mandate_id, actor=staff)

        def approve(mandate_id=mandate.pk):
            services.mandate_approve(mandate_id=mandate_id, actor=manager)

        outcomes.append(change_racing_decision(edit_and_resubmit, approve))
        final = Mandate.objects.get(pk=mandate.pk)
        assert (final.status, final.account_number) == ("PENDING_APPROVAL", "998877665544")
    assert outcomes == [{"change": "done", "decide": "refused"}] * 3
