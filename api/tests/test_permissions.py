"""HasScope: API clients need the view's scope, staff need its model permission."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from api import scopes
from api.permissions import HasScope
from api.principal import ApiPrincipal
from tests.factories import BranchFactory, UserFactory, key_header, make_api_client

pytestmark = pytest.mark.django_db

LOANS = "/api/v1/loans/"


class View:
    required_scopes = {"GET": scopes.LOANS_READ, "POST": [scopes.TRANSACTIONS_WRITE, "x:y"]}
    required_perms = {"GET": "loans.view_loanaccount"}


def _allowed(user, method="GET", view=None):
    request = Request(APIRequestFactory().generic(method, "/"))
    request.user = user
    return HasScope().has_permission(request, view or View())


def test_a_client_without_the_scope_gets_a_403(client):
    _, raw_key = make_api_client(scopes=[scopes.TRANSACTIONS_READ], all_branches=True)
    response = client.get(LOANS, **key_header(raw_key))
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "permission_denied"
    assert "loans:read" in error["message"]


def test_a_client_with_the_scope_is_allowed(client):
    _, raw_key = make_api_client(scopes=[scopes.LOANS_READ], all_branches=True)
    assert client.get(LOANS, **key_header(raw_key)).status_code == 200


def test_a_staff_user_needs_the_model_permission_not_a_scope(client):
    branch = BranchFactory()
    client.force_login(
        UserFactory(role="Branch Staff", home_branch=branch)
    )  # has loans.view_loanaccount
    assert client.get(LOANS).status_code == 200
    client.force_login(UserFactory())  # head office, but no role: no permission
    response = client.get(LOANS)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_head_and_options_need_what_get_needs_and_undeclared_methods_are_refused():
    principal = ApiPrincipal(make_api_client(scopes=[scopes.LOANS_READ])[0])
    assert _allowed(principal, "HEAD")
    assert _allowed(principal, "OPTIONS")
    assert not _allowed(principal, "DELETE")
    superuser = UserFactory(is_superuser=True)
    assert _allowed(superuser, "GET")
    assert not _allowed(superuser, "DELETE")  # not declared: closed, even for a superuser


def test_a_list_of_scopes_needs_all_of_them():
    one = ApiPrincipal(make_api_client(scopes=[scopes.TRANSACTIONS_WRITE])[0])
    assert not _allowed(one, "POST")


def test_anonymous_is_refused_and_a_view_without_declarations_is_a_programming_error():
    from django.contrib.auth.models import AnonymousUser

    assert not _allowed(AnonymousUser())
    with pytest.raises(ImproperlyConfigured):
        _allowed(UserFactory(is_superuser=True), view=object())
