"""Members of staff are added and changed through ``user_create`` and ``user_update`` (the
admin's forms call them): the row, the groups, an audit event, the welcome after commit;
and the rules (the home that matches the level, and no one gives more than they see) as
field messages, with nothing written."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts.models import User
from accounts.services import user_create, user_update
from audit.models import AuditMessage
from notifications.ddb_models import NotificationItem
from tests.factories import AreaFactory, BranchFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_user_added_in_the_admin_is_saved_audited_and_welcomed(
    client, django_capture_on_commit_callbacks
):
    admin = UserFactory(is_superuser=True)
    client.force_login(admin)
    group = Group.objects.get(name="Branch Staff")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:accounts_user_add"),
            {
                "username": "new.staff",
                "usable_password": "true",
                "password1": "A-long-enough-passphrase-1",
                "password2": "A-long-enough-passphrase-1",
                "first_name": "New",
                "last_name": "Staff",
                "email": "new.staff@example.com",
                "employee_code": "E99999",
                "mobile": "9845012345",
                "level": User.Level.BRANCH,
                "home_branch": BranchFactory().pk,
                "groups": [group.pk],
            },
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(username="new.staff")
    assert user.check_password("A-long-enough-passphrase-1")
    assert list(user.groups.all()) == [group]
    assert AuditMessage.objects.filter(
        ref=f"accounts.user#{user.pk}", payload__action="create"
    ).exists()
    welcomes = [n for n in NotificationItem.scan() if n.template_code == "welcome"]
    assert {n.channel for n in welcomes} == {"EMAIL", "SMS"}


# --- Changes: user_update, from the admin's change form or called directly ---------------


def _change_data(user: User, **overrides) -> dict:
    """The admin change form's POST for ``user`` as it is, with ``overrides``."""
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "is_superuser": "on" if user.is_superuser else "",
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [],
        "date_joined_0": user.date_joined.date().isoformat(),
        "date_joined_1": "10:00:00",
        "employee_code": user.employee_code or "",
        "mobile": user.mobile,
        "level": user.level,
        "home_branch": user.home_branch_id or "",
        "home_area": user.home_area_id or "",
        "home_region": user.home_region_id or "",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value not in ("", None)}


def _change(client, user: User, **overrides):
    return client.post(
        reverse("admin:accounts_user_change", args=[user.pk]), _change_data(user, **overrides)
    )


def _update_events(user: User, after: int = 0) -> list[dict]:
    """The changes of the user's update events, those after the event id ``after``."""
    return list(
        AuditMessage.objects.filter(
            ref=f"accounts.user#{user.pk}", payload__action="update", id__gt=after
        )
        .order_by("id")
        .values_list("payload__changes", flat=True)
    )


def _last_event_id() -> int:
    return AuditMessage.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_a_user_changed_in_the_admin_goes_through_user_update_and_is_audited(client):
    client.force_login(UserFactory(is_superuser=True))
    branch, other = BranchFactory(), BranchFactory()
    staff = UserFactory(home_branch=branch, role="Branch Staff", first_name="Asha")
    mark = _last_event_id()
    response = _change(client, staff, first_name="Asha R", home_branch=other.pk)
    assert response.status_code == 302, response.content.decode()[:2000]
    staff.refresh_from_db()
    assert (staff.first_name, staff.home_branch) == ("Asha R", other)
    assert list(staff.groups.values_list("name", flat=True)) == ["Branch Staff"]
    (changes,) = _update_events(staff, after=mark)
    assert changes["first_name"] == ["Asha", "Asha R"]
    assert changes["home_branch"] == [branch.pk, other.pk]


def test_a_level_without_its_home_is_a_field_message_and_nothing_is_written(client):
    client.force_login(UserFactory(is_superuser=True))
    staff = UserFactory(home_branch=BranchFactory())
    mark = _last_event_id()
    response = _change(client, staff, level=User.Level.AREA)  # still a branch, no area
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"home_area", "home_branch"}
    staff.refresh_from_db()
    assert staff.level == User.Level.BRANCH
    assert _update_events(staff, after=mark) == []


def test_an_admin_of_one_branch_gives_no_more_than_they_see(client):
    branch = BranchFactory()
    admin = UserFactory(home_branch=branch, role="Admin")
    client.force_login(admin)
    staff = UserFactory(home_branch=branch, role="Branch Staff")
    auditor = Group.objects.get(name="Auditor")
    mark = _last_event_id()

    refusals = {
        "level": _change(client, staff, level=User.Level.HEAD_OFFICE, home_branch=""),
        "groups": _change(client, staff, groups=[auditor.pk]),
        "is_superuser": _change(client, staff, is_superuser="on"),
    }
    for field, response in refusals.items():
        assert response.status_code == 200, field
        assert field in response.context["adminform"].form.errors, field

    staff.refresh_from_db()
    assert (staff.level, staff.is_superuser) == (User.Level.BRANCH, False)
    assert list(staff.groups.values_list("name", flat=True)) == ["Branch Staff"]
    assert _update_events(staff, after=mark) == []

    assert _change(client, staff, first_name="Ravi").status_code == 302
    staff.refresh_from_db()
    assert staff.first_name == "Ravi"


def test_user_update_refuses_a_home_beyond_the_actors_branches():
    area = AreaFactory()
    own, neighbour, far = BranchFactory(area=area), BranchFactory(area=area), BranchFactory()
    actor = UserFactory(home_area=area, role="Admin")
    staff = UserFactory(home_branch=own)
    with pytest.raises(ValidationError) as refused:
        user_update(user_id=staff.pk, actor=actor, home_branch=far)
    assert set(refused.value.message_dict) == {"home_branch"}
    staff.refresh_from_db()
    assert staff.home_branch == own

    mark = _last_event_id()
    moved = user_update(user_id=staff.pk, actor=actor, home_branch=neighbour)
    assert moved.home_branch == neighbour
    (changes,) = _update_events(staff, after=mark)
    assert changes["home_branch"] == [own.pk, neighbour.pk]


def test_user_update_finds_no_user_outside_the_actors_branches():
    actor = UserFactory(home_branch=BranchFactory(), role="Admin")
    stranger = UserFactory(home_branch=BranchFactory())
    with pytest.raises(User.DoesNotExist):
        user_update(user_id=stranger.pk, actor=actor, first_name="X")


def test_only_a_superuser_makes_or_unmakes_a_superuser():
    head_office_admin = UserFactory(role="Admin")  # sees every branch, not a superuser
    root = UserFactory(is_superuser=True)
    with pytest.raises(ValidationError) as refused:
        user_update(user_id=root.pk, actor=head_office_admin, is_superuser=False)
    assert set(refused.value.message_dict) == {"is_superuser"}
    assert User.objects.get(pk=root.pk).is_superuser

    user_update(user_id=root.pk, actor=head_office_admin, first_name="Root")  # other fields: yes
    assert user_update(user_id=root.pk, actor=root, is_superuser=False).is_superuser is False


def test_user_create_checks_the_same_rules():
    actor = UserFactory(home_branch=BranchFactory(), role="Admin")
    with pytest.raises(ValidationError) as refused:
        user_create(actor=actor, username="ho.user", level=User.Level.HEAD_OFFICE)
    assert set(refused.value.message_dict) == {"level"}
    assert not User.objects.filter(username="ho.user").exists()
