import threading
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from approvals.exceptions import MakerCannotCheck
from approvals.services import approval_decide
from audit.models import AuditMessage
from core.errors import Conflict
from core.workflow import InvalidTransition, NotAllowed
from mandates import services
from mandates.exceptions import MandateError
from mandates.models import Mandate, ScheduledPresentation
from tests.factories import active_mandate, actors, draft_mandate, make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def lifecycle(world):
    return world.loans["own"], world.people


def test_the_whole_lifecycle_to_active_records_every_move(lifecycle):
    loan, people = lifecycle
    mandate = active_mandate(loan, people)
    assert mandate.status == "ACTIVE"
    assert mandate.umrn.startswith("SBOX")
    moves = list(mandate.transitions.values_list("from_status", "to_status", "actor"))
    assert moves == [
        ("", "DRAFT", people["staff"].pk),
        ("DRAFT", "PENDING_APPROVAL", people["staff"].pk),
        ("PENDING_APPROVAL", "APPROVED", people["manager"].pk),
        ("APPROVED", "SUBMITTED_TO_BANK", people["ops"].pk),
        ("SUBMITTED_TO_BANK", "ACTIVE", people["ops"].pk),
    ]
    transitions = AuditMessage.objects.filter(
        ref=f"mandates.mandate#{mandate.pk}", payload__action="transition"
    )
    assert transitions.count() == 4
    assert ScheduledPresentation.objects.filter(mandate=mandate).exists()


def test_refused_moves(lifecycle):
    loan, people = lifecycle
    mandate = draft_mandate(loan, people["staff"])
    with pytest.raises(Conflict):  # not yet submitted
        services.mandate_approve(mandate_id=mandate.pk, actor=people["manager"])
    services.mandate_submit(mandate_id=mandate.pk, actor=people["staff"])
    with pytest.raises(InvalidTransition):
        services.mandate_send_to_bank(mandate_id=mandate.pk, actor=people["ops"])
    with pytest.raises(MandateError):
        services.mandate_return(mandate_id=mandate.pk, actor=people["manager"], remarks=" ")
    services.mandate_return(mandate_id=mandate.pk, actor=people["manager"], remarks="wrong IFSC")
    assert Mandate.objects.get(pk=mandate.pk).status == "DRAFT"


def test_the_checker_can_never_be_the_maker(lifecycle):
    loan, people = lifecycle
    manager = people["manager"]
    mandate = draft_mandate(loan, manager)
    services.mandate_submit(mandate_id=mandate.pk, actor=manager)
    with pytest.raises(MakerCannotCheck):
        services.mandate_approve(mandate_id=mandate.pk, actor=manager)
    # and the database refuses it too, whatever the code does
    with pytest.raises(IntegrityError), transaction.atomic():
        Mandate.objects.filter(pk=mandate.pk).update(checker=manager)


def test_branch_staff_cannot_approve(lifecycle):
    loan, people = lifecycle
    mandate = draft_mandate(loan, people["staff"])
    services.mandate_submit(mandate_id=mandate.pk, actor=people["staff"])
    other_staff = actors(loan.branch)["staff"]
    with pytest.raises(NotAllowed):
        services.mandate_approve(mandate_id=mandate.pk, actor=other_staff)


def test_only_one_active_mandate_per_loan(lifecycle):
    loan, people = lifecycle
    active_mandate(loan, people)
    second = draft_mandate(loan, people["staff"], account_number="998877665544")
    services.mandate_submit(mandate_id=second.pk, actor=people["staff"])
    services.mandate_approve(mandate_id=second.pk, actor=people["manager"])
    with pytest.raises(MandateError, match="already has an active mandate"):
        services.mandate_send_to_bank(mandate_id=second.pk, actor=people["ops"])
    assert Mandate.objects.filter(loan=loan, status="ACTIVE").count() == 1


def test_the_payer_must_be_on_the_loan(lifecycle):
    loan, people = lifecycle
    stranger = make_customer(branch=loan.branch)
    with pytest.raises(ValidationError) as caught:
        draft_mandate(loan, people["staff"], payer=stranger)
    assert "payer" in caught.value.message_dict


def test_suspend_and_cancel_go_through_maker_checker(lifecycle):
    loan, people = lifecycle
    mandate = active_mandate(loan, people)
    request = services.mandate_stop_request(
        mandate_id=mandate.pk, action="SUSPEND", reason="customer dispute", actor=people["manager"]
    )
    assert Mandate.objects.get(pk=mandate.pk).status == "ACTIVE"
    approval_decide(request_id=request.pk, approve=True, actor=people["ops"])
    assert Mandate.objects.get(pk=mandate.pk).status == "SUSPENDED"
    assert not ScheduledPresentation.objects.filter(mandate=mandate, status="SCHEDULED").exists()
    services.mandate_resume(mandate_id=mandate.pk, actor=people["ops"])
    assert Mandate.objects.get(pk=mandate.pk).status == "ACTIVE"
    cancel = services.mandate_stop_request(
        mandate_id=mandate.pk, action="CANCEL", reason="loan foreclosed", actor=people["manager"]
    )
    approval_decide(request_id=cancel.pk, approve=True, actor=people["ops"])
    assert Mandate.objects.get(pk=mandate.pk).status == "CANCELLED"


def test_expiry_after_the_end_date(lifecycle):
    loan, people = lifecycle
    mandate = active_mandate(loan, people, end_date=date(2026, 12, 31))
    assert services.mandates_expire(today=date(2027, 1, 1)) == 1
    assert Mandate.objects.get(pk=mandate.pk).status == "EXPIRED"


@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_once_one_wins_with_one_audit_event(lifecycle):
    loan, people = lifecycle
    second_manager = actors(loan.branch)["manager"]
    mandate = draft_mandate(loan, people["staff"])
    services.mandate_submit(mandate_id=mandate.pk, actor=people["staff"])
    outcomes = []
    barrier = threading.Barrier(2)

    def decide(user):
        barrier.wait()
        try:
            services.mandate_approve(mandate_id=mandate.pk, actor=user)
            outcomes.append("won")
        except Conflict as exc:
            outcomes.append(exc.message)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=decide, args=(u,)) for u in (people["manager"], second_manager)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("won") == 1
    assert any("approved already" in o for o in outcomes)
    assert (
        AuditMessage.objects.filter(
            ref=f"mandates.mandate#{mandate.pk}",
            payload__action="transition",
            payload__changes__status=["PENDING_APPROVAL", "APPROVED"],
        ).count()
        == 1
    )
