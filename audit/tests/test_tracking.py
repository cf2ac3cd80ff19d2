"""Tracked models write outbox rows with the change, in its transaction."""

import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from accounts.models import Branch
from audit.masking import mask_value
from audit.models import AuditMessage
from audit.services import audit_record
from audit.tracking import entity_for, track
from core.context import acting_as
from tests.factories import PASSWORD, AreaFactory, BranchFactory, UserFactory

pytestmark = pytest.mark.django_db


def events_of(instance) -> list[AuditMessage]:
    return list(AuditMessage.objects.filter(ref=entity_for(instance)).order_by("id"))


def test_create_records_every_tracked_field_with_no_before():
    area = AreaFactory()
    AuditMessage.objects.all().delete()
    branch = Branch.objects.create(code="BLR-1", name="Koramangala", area=area, state="Karnataka")
    (event,) = events_of(branch)
    assert event.entity == f"accounts.branch#{branch.pk}"
    assert event.entity_repr == "BLR-1 Koramangala"
    assert event.action == "create"
    assert event.done_at is None
    assert event.changes == {
        "code": [None, "BLR-1"],
        "name": [None, "Koramangala"],
        "area": [None, area.pk],
        "state": [None, "Karnataka"],
        "cash_in_hand_limit": [None, "200000.00"],  # money as a string, never a float
        "cash_receipt_limit": [None, "200000.00"],
        "cutoff_time": [None, "18:00:00"],
        "is_active": [None, True],
    }
    assert len(event.event_id) == 26  # a ULID


def test_update_records_only_the_changed_fields_before_and_after():
    branch = BranchFactory(name="Old name")
    branch.name = "New name"
    branch.cash_in_hand_limit = Decimal("150000.5")
    branch.save()
    event = events_of(branch)[-1]
    assert event.action == "update"
    assert event.changes == {
        "name": ["Old name", "New name"],
        "cash_in_hand_limit": ["200000.00", "150000.50"],
    }


def test_saving_without_a_change_records_nothing():
    branch = BranchFactory()
    before = len(events_of(branch))
    branch.save()
    # the same amount written differently is no change either
    branch.cash_in_hand_limit = Decimal("200000")
    branch.save()
    Branch.objects.get(pk=branch.pk).save()
    assert len(events_of(branch)) == before


def test_update_fields_limit_what_is_compared():
    branch = BranchFactory(name="Kept", state="Goa")
    branch.name = "Not saved"
    branch.state = "Kerala"
    branch.save(update_fields=["state"])
    assert events_of(branch)[-1].changes == {"state": ["Goa", "Kerala"]}


def test_delete_records_the_state_before():
    branch = BranchFactory(name="Closing")
    entity = entity_for(branch)
    branch.delete()
    event = AuditMessage.objects.filter(ref=entity).latest("id")
    assert event.action == "delete"
    assert event.changes["name"] == ["Closing", None]
    assert event.changes["cash_in_hand_limit"] == ["200000.00", None]


def test_a_rolled_back_change_leaves_no_event():
    area = AreaFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        Branch.objects.create(code="GONE", name="x", area=area, state="Goa")
        raise RuntimeError
    assert not AuditMessage.objects.filter(payload__entity_repr__startswith="GONE").exists()


def test_password_is_never_recorded_only_that_it_changed():
    user = UserFactory(username="clerk", mobile="9876543210")
    raw_hash = user.password
    created = events_of(user)[0]
    assert created.action == "create"
    assert created.changes["password"] == [None, "***"]
    assert created.changes["mobile"] == [None, "XXXXXX3210"]
    assert "last_login" not in created.changes
    user.set_password("An0ther-pass-2026")
    user.save()
    changed = events_of(user)[-1]
    assert changed.changes == {"password": ["***", "***"]}
    dumped = json.dumps([e.changes for e in events_of(user)]) + "".join(
        e.entity_repr for e in events_of(user)
    )
    assert raw_hash not in dumped
    assert user.password not in dumped
    assert "9876543210" not in dumped


def test_a_login_stamp_alone_is_no_event(client):
    user = UserFactory(is_staff=True)
    before = len(events_of(user))
    response = client.post(
        "/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.last_login is not None
    assert len(events_of(user)) == before  # last_login is excluded


def test_masked_mobile_change_is_recorded_masked():
    user = UserFactory(mobile="9876543210")
    user.mobile = "9123456789"
    user.save()
    assert events_of(user)[-1].changes == {"mobile": ["XXXXXX3210", "XXXXXX6789"]}


def test_group_membership_changes_are_recorded_by_name():
    user = UserFactory()
    auditors = Group.objects.create(name="Audit test group")
    user.groups.add(auditors)
    assert events_of(user)[-1].changes == {"groups": [[], ["Audit test group"]]}
    user.groups.clear()
    assert events_of(user)[-1].changes == {"groups": [["Audit test group"], []]}
    assert events_of(auditors)[0].action == "create"


def test_acting_as_names_the_actor_outside_a_request():
    officer = UserFactory(username="ops-officer")
    with acting_as(officer, request_id="task-1234567890"):
        branch = BranchFactory()
    event = events_of(branch)[0]
    assert (event.actor_id, event.actor_repr) == (officer.pk, "ops-officer")
    assert event.request_id == "task-1234567890"
    assert event.ip is None


def test_without_an_actor_the_event_is_the_systems():
    branch = BranchFactory()
    event = events_of(branch)[0]
    assert (event.actor_id, event.actor_repr) == (None, "")
    assert event.request_id  # still correlated


def test_audit_record_writes_a_transition_with_remarks_and_masks_tracked_fields():
    officer = UserFactory(username="checker")
    user = UserFactory(mobile="9876543210")
    event = audit_record(
        instance_or_entity=user,
        action="transition",
        changes={"mobile": ["9876543210", "9000000001"], "status": ["SUBMITTED", "APPROVED"]},
        remarks="Approved after KYC",
        actor=officer,
    )
    assert event.entity == entity_for(user)
    assert event.changes == {
        "mobile": ["XXXXXX3210", "XXXXXX0001"],
        "status": ["SUBMITTED", "APPROVED"],
    }
    assert (event.remarks, event.actor_repr) == ("Approved after KYC", "checker")


def test_audit_record_takes_an_entity_string_and_makes_values_json_safe():
    event = audit_record(
        instance_or_entity="Loans.LoanAccount#12",
        action="transition",
        changes={"amount": [Decimal("10.5"), Decimal("0.00")]},
    )
    assert event.entity == "loans.loanaccount#12"
    assert event.changes == {"amount": ["10.5", "0.00"]}


def test_audit_record_refuses_an_unknown_action():
    with pytest.raises(ValueError):
        audit_record(instance_or_entity="x.y#1", action="approve")


def test_track_refuses_a_field_that_does_not_exist():
    with pytest.raises(ImproperlyConfigured):
        track(Branch, masked=("pan",))


def test_mask_value_keeps_the_last_four():
    assert mask_value("ABCDE1234F") == "XXXXXX234F"
    assert mask_value("9876543210") == "XXXXXX3210"
    assert mask_value("000123456789") == "XXXXXXXX6789"
    assert mask_value("12345") == "XXX45"  # never more than half of a short value
    assert mask_value(mask_value("9876543210")) == "XXXXXX3210"
    assert mask_value(None) == mask_value("") == ""
    assert mask_value("ABCDE1234F", keep=2) == "XXXXXXXX4F"


def test_a_groups_permission_changes_are_recorded():
    group = Group.objects.create(name="Audit perms group")
    view_branch = Permission.objects.get(codename="view_branch")
    group.permissions.add(view_branch)
    group.permissions.add(view_branch)  # already there: no event
    events = events_of(group)
    assert [e.action for e in events] == ["create", "update"]
    assert events[-1].changes == {"permissions": [[], [str(view_branch)]]}
