"""The admin sidebar's app list is kept per permission set: users of one role share it,
and what a user may see changes with their permissions at once."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.template.loader import render_to_string
from django.urls import reverse

from core.admin import site as admin_site
from tests.factories import BranchFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache():
    admin_site._app_lists.clear()
    admin_site._sidebars.clear()
    yield
    admin_site._app_lists.clear()
    admin_site._sidebars.clear()


def _sidebar(client) -> set[str]:
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return {m["object_name"] for app in response.context["available_apps"] for m in app["models"]}


def test_users_of_one_role_share_one_entry_and_see_the_same_models(client):
    branch = BranchFactory()
    first, second = (
        UserFactory(role="Branch Staff", home_branch=branch),
        UserFactory(role="Branch Staff", home_branch=branch),
    )
    client.force_login(first)
    shown = _sidebar(client)
    client.force_login(second)
    assert _sidebar(client) == shown
    assert len(admin_site._app_lists) == 1
    assert "LoanAccount" in shown and "User" not in shown


def test_roles_that_differ_get_their_own_list(client):
    branch = BranchFactory()
    client.force_login(UserFactory(role="Branch Staff", home_branch=branch))
    staff = _sidebar(client)
    client.force_login(UserFactory(role="Auditor"))
    auditor = _sidebar(client)
    client.force_login(UserFactory(is_superuser=True))
    superuser = _sidebar(client)
    assert len(admin_site._app_lists) == 3
    assert staff < superuser and staff != auditor
    # the notification outbox is for those who see every branch
    assert "Outbox" in auditor and "Outbox" not in staff


def test_what_an_app_registers_keys_the_list_too(client):
    """accounts registers "sees every branch": Operations at a branch and at head office
    hold the same permissions, but only head office sees the notification outbox (and the
    head-office-only lists)."""
    client.force_login(UserFactory(role="Operations", home_branch=BranchFactory()))
    at_branch = _sidebar(client)
    client.force_login(UserFactory(role="Operations"))
    at_head_office = _sidebar(client)
    assert len(admin_site._app_lists) == 2
    assert "Outbox" in at_head_office - at_branch


def test_a_new_permission_shows_at_once_and_a_revoked_one_goes(client):
    user = UserFactory(role="Branch Staff", home_branch=BranchFactory())
    client.force_login(user)
    assert "Region" not in _sidebar(client)
    extra = Group.objects.create(name="Region viewers")
    extra.permissions.add(Permission.objects.get(codename="view_region"))
    user.groups.add(extra)
    assert "Region" in _sidebar(client)
    user.groups.remove(extra)
    assert "Region" not in _sidebar(client)


def test_the_second_page_of_a_role_does_not_build_the_list_again(client, monkeypatch):
    site = admin_site.admin.site
    assert isinstance(site, admin_site.BackOfficeAdminSite)
    builds = []
    original = site._build_app_dict

    def counted(request, label=None):
        builds.append(label)
        return original(request, label)

    monkeypatch.setattr(site, "_build_app_dict", counted)
    branch = BranchFactory()
    client.force_login(UserFactory(role="Branch Staff", home_branch=branch))
    _sidebar(client)
    _sidebar(client)
    client.force_login(UserFactory(role="Branch Staff", home_branch=branch))
    _sidebar(client)
    assert builds == [None]


def test_the_sidebar_highlights_the_pages_model_and_is_djangos_rendering(client):
    user = UserFactory(role="Branch Staff", home_branch=BranchFactory())
    client.force_login(user)
    for name, other in (("loanaccount", "customer"), ("customer", "loanaccount")) * 2:
        response = client.get(reverse(f"admin:loans_{name}_changelist"))
        html = response.content.decode()
        assert f'<tr class="model-{name} current-model">' in html
        assert f'<tr class="model-{other}">' in html
        expected = render_to_string(
            "admin/app_list.html",
            {
                "app_list": response.context["available_apps"],
                "show_changelinks": False,
                "request": response.wsgi_request,
            },
        )
        assert expected in html
    assert len(admin_site._sidebars) == 2


def test_a_refused_admin_page_is_the_admins_own_403_with_navigation(client):
    operations = UserFactory(role="Operations")
    client.force_login(operations)
    response = client.get(reverse("admin:api_apiclient_changelist"))
    assert response.status_code == 403
    html = response.content.decode()
    assert 'id="nav-sidebar"' in html and 'id="header"' in html  # the admin's page
    assert reverse("admin:mandates_mandate_changelist") in html  # what the role may open
    assert reverse("admin:api_apiclient_changelist") not in html.split('id="content"')[0]
    assert "do not have permission" in html
    assert f'href="{reverse("admin:index")}"' in html


def test_a_refused_workflow_screen_is_the_admins_403_too(client):
    client.force_login(UserFactory())  # staff, no role
    response = client.get(reverse("reconciliation:dashboard"))
    assert response.status_code == 403
    assert 'id="nav-sidebar"' in response.content.decode()


def test_a_refusal_outside_the_admin_for_a_non_staff_user_stays_djangos_plain_403(rf):
    from django.contrib.auth.models import AnonymousUser

    from api.exceptions import handler403

    request = rf.get("/reconciliation/dashboard/")
    request.user = AnonymousUser()
    response = handler403(request)
    assert response.status_code == 403
    assert b"nav-sidebar" not in response.content


# Admins that are not the back-office's: Django's groups and django-axes' login logs have
# no money or id typed in.
NOT_BACK_OFFICE = {"auth.group", "axes.accessattempt", "axes.accesslog", "axes.accessfailurelog"}


def test_every_admin_of_the_site_takes_ascii_digits_only():
    from django.contrib import admin

    from core.admin.base import BackOfficeModelAdmin

    others = {
        model._meta.label_lower
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, BackOfficeModelAdmin)
    }
    assert others == NOT_BACK_OFFICE
