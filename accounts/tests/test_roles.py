"""The roles after a migrate (and after each flush of a transactional test): every app's
permissions join the roles that name them, synced once, at the last app's post_migrate."""

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.core.management.sql import emit_post_migrate_signal
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.roles import ROLES


@pytest.mark.django_db
def test_after_post_migrate_the_roles_hold_the_permissions_of_every_app_synced_once():
    admin = Group.objects.get(name="Admin")
    admin.permissions.clear()
    last_app = [config for config in apps.get_app_configs() if config.models_module][-1]
    last_apps = Permission.objects.filter(content_type__app_label=last_app.label)
    assert last_apps.exists()

    with CaptureQueriesContext(connection) as queries:
        emit_post_migrate_signal(verbosity=0, interactive=False, db="default")

    assert admin.permissions.count() == Permission.objects.count()
    assert set(last_apps) <= set(admin.permissions.all())
    role_lookups = [q["sql"] for q in queries if q["sql"].startswith('SELECT "auth_group"."id"')]
    assert len(role_lookups) == len(ROLES)
