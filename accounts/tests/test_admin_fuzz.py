"""Every list of the admin, fed odd query strings: never a 500.

Every registered admin (each model of the admin site, the DynamoDB browsers included) is
opened as a superuser and as a branch user, with each of its list parameters set to a
NUL in turn, and (the superuser) to one other odd value, taken in turn from a list, so that
each odd value meets a quarter of the parameters and the walk stays short. The parameters
are read from the admin itself: the filter specs of ``list_filter`` (their ``expected_parameters``),
``date_hierarchy``, search (``q``), ordering (``o``) and page (``p``), and every name of
a field or a ``?`` link on the list page (the DynamoDB browsers' search forms, the
posting queue's status tabs).

A NUL (which PostgreSQL refuses in text) in any parameter is answered as Django answers
a bad filter: back to the list (``?e=1``) with a message. The other odd values (2,000
characters, digits of other scripts, a quote) are whatever the list makes of them, but
never a server error.
"""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.factories import UserFactory

from .access_world import World

NUL = "\x00"
ARABIC_INDIC_1500 = "\u0661\u0665\u0660\u0660"
FULL_WIDTH_1500 = "\uff11\uff15\uff10\uff10"
NUL_VALUES = [NUL, f"1{NUL}"]
OTHER_ODD_VALUES = ["x" * 2000, ARABIC_INDIC_1500, FULL_WIDTH_1500, "'"]
ALWAYS = {"q", "o", "p"}
IGNORED = {"e", "_changelist_filters", "_to_field", "_popup", "csrfmiddlewaretoken"}
_NAME = re.compile(r"""\bname="([^"]+)\"""")
_HREF = re.compile(r"""href="(\?[^"]*)\"""")


@pytest.fixture(autouse=True)
def clean_stores():
    """Overrides the suite's: the module's world keeps its DynamoDB items between tests."""
    yield


def _changelists() -> list[tuple[str, admin.ModelAdmin]]:
    found = []
    for model, model_admin in admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        found.append((url, model_admin))
    return sorted(found, key=lambda pair: pair[0])


def _spec_parameters(model_admin, user) -> set[str]:
    """The parameters of the admin's filter specs and date hierarchy."""
    names: set[str] = set()
    if model_admin.date_hierarchy:
        field = model_admin.date_hierarchy
        names |= {f"{field}__year", f"{field}__month", f"{field}__day"}
    if not model_admin.list_filter:
        return names
    request = RequestFactory().get("/")
    request.user = user
    try:
        changelist = model_admin.get_changelist_instance(request)
    except IncorrectLookupParameters:  # pragma: no cover - the plain list is never bad
        return names
    for spec in changelist.filter_specs:
        names |= set(spec.expected_parameters())
    return names


def _page_parameters(html: str) -> set[str]:
    """The names of the page's form fields and of the parameters of its ``?`` links."""
    names = set(_NAME.findall(html))
    for href in _HREF.findall(html):
        names |= {name for name, _ in parse_qsl(urlsplit(unescape(href)).query)}
    return names


def _parameters(client: Client, url: str, model_admin, user) -> list[str]:
    html = client.get(url).content.decode()
    names = _spec_parameters(model_admin, user) | _page_parameters(html) | ALWAYS
    return sorted(name for name in names if name not in IGNORED and not name.startswith("_"))


@pytest.fixture(scope="module")
def superuser(access_world: World, django_db_blocker):
    with django_db_blocker.unblock():
        return UserFactory(username="fuzz.root", is_superuser=True, is_staff=True)


@pytest.fixture(scope="module")
def walk(access_world: World, superuser, django_db_blocker) -> list[tuple[str, list[str]]]:
    """Every changelist's URL with its parameters, read once for both walks."""
    root = Client()
    with django_db_blocker.unblock():
        root.force_login(superuser)
        return [
            (url, _parameters(root, url, model_admin, superuser))
            for url, model_admin in _changelists()
        ]


def _requests(walk, who: str):
    """(url, name, value): a NUL (the two forms in turn) in every parameter; for the
    superuser also one other odd value per parameter, the values in turn."""
    turn = 0
    for url, names in walk:
        for name in names:
            turn += 1
            yield url, name, NUL_VALUES[turn % len(NUL_VALUES)]
            if who == "superuser":
                yield url, name, OTHER_ODD_VALUES[turn % len(OTHER_ODD_VALUES)]


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["superuser", "branch staff"])
def test_no_list_filter_value_makes_a_server_error(access_world: World, superuser, walk, who):
    user = superuser if who == "superuser" else access_world.users["BS"]
    client = Client(raise_request_exception=False)
    client.force_login(user)
    server_errors, not_refused, walked = [], [], 0
    for url, name, value in _requests(walk, who):
        walked += 1
        response = client.get(f"{url}?{urlencode({name: value})}")
        if response.status_code >= 500:
            server_errors.append(f"{url}?{name}={value[:20]!r}")
        elif NUL in value and (response.status_code != 302 or response["Location"] != f"{url}?e=1"):
            not_refused.append(f"{url}?{name}={value!r}: {response.status_code}")
    assert len(walk) == len(admin.site._registry) and walked > 100  # every list, its parameters
    assert server_errors == [], "\n".join(server_errors)
    assert not_refused == []


@pytest.mark.django_db
def test_a_nul_in_a_filter_shows_the_list_with_a_message(access_world: World, superuser):
    client = Client()
    client.force_login(superuser)
    url = reverse("admin:approvals_approvalrequest_changelist")
    response = client.get(f"{url}?status=APPROVED%00", follow=True)
    assert response.redirect_chain == [(f"{url}?e=1", 302)]
    assert response.status_code == 200
    page = response.content.decode()
    assert "The filter “status” had a character that cannot be searched for" in page
    assert 'id="changelist"' in page
