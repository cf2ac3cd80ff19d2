"""A member of staff added in the admin goes through ``user_create``: the row with the
password the form hashed, the groups, an audit event, and the welcome after commit."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.models import User
from audit.models import AuditMessage
from notifications.ddb_models import NotificationItem
from tests.factories import BranchFactory, UserFactory

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
