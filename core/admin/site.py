"""The back-office's admin site: Django's, with the sidebar kept per permission set
instead of being built and rendered again on every page.

Django builds the app list (every registered model's permission checks and URLs) for the
sidebar of every admin page, about 2.5 ms of CPU, and renders it (``admin/app_list.html``,
about 50 rows), another 3 to 8 ms on the development VM. What both show depends only on
what the user may do: their permissions, whether they are a superuser, and what the apps
register with :func:`register_sidebar_key` (accounts: whether the user sees every branch,
which the outbox and the head-office-only lists ask). Those make the key; users of one
role share an entry. The rendered sidebar is kept per key and per highlighted entry (the
app and model whose URL the page's path contains, as the template decides it).

The header's links before "View site" come from :func:`register_header_link` (approvals:
"Approvals (n)"), rendered by ``{% site_header_links %}`` in
``templates/admin/base_site.html``. The start page (``/admin/``, ``templates/admin/index.html``)
shows the panels the apps register with :func:`register_start_panel` for the user's role,
above the app list; every admin and workflow page shows the banners registered with
:func:`register_page_banner` (payments: the ledger is in maintenance). The registries are
filled in the apps' ``ready()``; the site itself names no app.

The header and the title say the lender's name (``settings.LENDER_NAME``) and "Back-office";
"View site" leads to the start page.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.views.main import ERROR_FLAG
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.defaultfilters import urlencode
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe
from django.views import defaults

logger = logging.getLogger(__name__)

MAX_ENTRIES = 256  # distinct permission sets; beyond that the cache starts again

_lock = threading.Lock()
_app_lists: dict[tuple, list] = {}
_sidebars: dict[tuple, SafeString] = {}


def _remember(cache: dict, key: tuple, value):
    with _lock:
        if len(cache) >= MAX_ENTRIES:
            cache.clear()
        cache[key] = value
    return value


_sidebar_key_parts: list[Callable[[object], Hashable]] = []
_header_links: list[Callable[[HttpRequest], str]] = []


def register_sidebar_key(part: Callable[[object], Hashable]) -> None:
    """``part(user)`` decides, beside the user's permissions, what the sidebar shows (a
    ModelAdmin's ``has_view_permission`` asks it): users who differ in it never share a
    cached sidebar. Registering the same function again changes nothing."""
    if part not in _sidebar_key_parts:
        _sidebar_key_parts.append(part)
    _app_lists.clear()
    _sidebars.clear()


def register_header_link(link: Callable[[HttpRequest], str]) -> None:
    """``link(request)`` is HTML (or "") shown in the header before Django's user links,
    e.g. ``<a href="...">Approvals (3)</a> / ``. Registering it again changes nothing."""
    if link not in _header_links:
        _header_links.append(link)


def header_links_html(request) -> SafeString:
    return mark_safe("".join(conditional_escape(link(request)) for link in _header_links))  # noqa: S308 - escaped


# --- The start page and the page banners -------------------------------------------------


@dataclass(frozen=True)
class StartPanel:
    name: str
    render: Callable[[HttpRequest], str]
    order: int
    permission: str | None
    when: Callable[[object], bool] | None

    def shown_to(self, user) -> bool:
        if self.permission and not user.has_perm(self.permission):
            return False
        return self.when is None or bool(self.when(user))


_start_panels: dict[str, StartPanel] = {}
_page_banners: list[Callable[[HttpRequest], str]] = []


def register_start_panel(
    name: str,
    render: Callable[[HttpRequest], str],
    *,
    order: int = 100,
    permission: str | None = None,
    when: Callable[[object], bool] | None = None,
) -> None:
    """A panel of the start page: ``render(request)`` is its HTML (or "" to show nothing),
    shown to users who have ``permission`` and for whom ``when(user)`` is true, in
    ``order`` (lower first). Registering a name again replaces its panel."""
    _start_panels[name] = StartPanel(name, render, order, permission, when)


def start_panels_html(request) -> list[SafeString]:
    """The user's panels, rendered. A panel that fails (a store down) shows a note naming
    it instead of taking the start page down with it."""
    user = request.user
    shown = []
    for panel in sorted(_start_panels.values(), key=lambda p: (p.order, p.name)):
        if not panel.shown_to(user):
            continue
        try:
            html = panel.render(request)
        except Exception:
            logger.exception("start page: the %s panel failed", panel.name)
            html = render_to_string(
                "admin/_start_panel_failed.html", {"name": panel.name}, request=request
            )
        if html:
            shown.append(mark_safe(conditional_escape(html)))  # noqa: S308 - escaped
    return shown


def register_page_banner(banner: Callable[[HttpRequest], str]) -> None:
    """``banner(request)`` is HTML (or "") shown above the messages of every admin and
    workflow page, e.g. "The ledger is in maintenance". Registering it again changes
    nothing."""
    if banner not in _page_banners:
        _page_banners.append(banner)


def page_banners_html(request) -> SafeString:
    """The banners, escaped unless safe; one that fails is left out (and logged)."""
    shown = []
    for banner in _page_banners:
        try:
            shown.append(conditional_escape(banner(request)))
        except Exception:
            logger.exception("page banner %s failed", getattr(banner, "__name__", banner))
    return mark_safe("".join(shown))  # noqa: S308 - escaped


def app_list_key(user) -> tuple:
    if user.is_superuser:
        perms = "*"  # has_perm is True for everything; no need to load the permissions
    else:
        perms = hashlib.sha256("\n".join(sorted(user.get_all_permissions())).encode()).hexdigest()
    parts = tuple(part(user) for part in _sidebar_key_parts)
    return (user.is_active, user.is_staff, user.is_superuser, *parts, perms)


# What no store takes in a query: PostgreSQL refuses a NUL in text (psycopg raises while the
# list is rendered: a 500), and a NUL is never part of a filter value, a search or an id.
REFUSED_CHARACTERS = ("\x00",)


def refused_parameter(query) -> str | None:
    """The name of the first query-string parameter whose name or value holds a
    character no store accepts, or None."""
    for name, values in query.lists():
        if any(bad in text for text in (name, *values) for bad in REFUSED_CHARACTERS):
            return name
    return None


def refuse_bad_query(view):
    """Every admin page's one check of its query string: a parameter no store can take is
    answered as Django answers a bad list filter, back to the page with ``?e=1``, here
    with a message saying which parameter was dropped."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        name = refused_parameter(request.GET)
        if name is None:
            return view(request, *args, **kwargs)
        shown = "".join(ch for ch in name if ch not in REFUSED_CHARACTERS)[:50]
        messages.error(
            request,
            f"The filter “{shown}” had a character that cannot be searched for (a NUL "
            "byte); the filters were cleared.",
        )
        return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")

    return guarded


class BackOfficeAdminSite(admin.AdminSite):
    index_title = "Start page"

    @property
    def site_header(self) -> str:
        return f"{settings.LENDER_NAME} Back-office"

    @property
    def site_title(self) -> str:
        return self.site_header

    def each_context(self, request):
        context = super().each_context(request)
        context["site_url"] = reverse(f"{self.name}:index", current_app=self.name)
        return context

    def index(self, request, extra_context=None):
        panels = start_panels_html(request) if request.user.is_authenticated else []
        return super().index(request, {"start_panels": panels, **(extra_context or {})})

    def admin_view(self, view, cacheable=False):
        return super().admin_view(refuse_bad_query(view), cacheable)

    def get_app_list(self, request, app_label=None):
        if app_label is not None or not request.user.is_authenticated:
            return super().get_app_list(request, app_label)
        key = app_list_key(request.user)
        found = _app_lists.get(key)
        if found is None:
            found = _remember(_app_lists, key, super().get_app_list(request))
        return found


def sidebar_html(request, app_list: list) -> SafeString:
    """``admin/app_list.html`` for the sidebar (``templates/admin/nav_sidebar.html``)."""
    context = {"app_list": app_list, "show_changelinks": False, "request": request}
    if not request.user.is_authenticated:
        return mark_safe(render_to_string("admin/app_list.html", context))  # noqa: S308
    path = urlencode(request.path)
    current = tuple(
        url
        for app in app_list
        for url in (app["app_url"], *(model.get("admin_url") for model in app["models"]))
        if url and url in path
    )
    key = (app_list_key(request.user), current)
    found = _sidebars.get(key)
    if found is None:
        html = mark_safe(render_to_string("admin/app_list.html", context))  # noqa: S308
        found = _remember(_sidebars, key, html)
    return found


def permission_denied(request, exception=None) -> HttpResponse:
    """The 403 of the admin and the workflow screens (``handler403`` outside the API): for
    a signed-in member of staff, the admin's own page, with its header and the sidebar of
    what they may open; for anyone else, Django's plain page (it shows no navigation)."""
    user = getattr(request, "user", None)
    if not (user is not None and user.is_active and user.is_staff):
        return defaults.permission_denied(request, exception)
    site = admin.site
    request.current_app = site.name
    context = {**site.each_context(request), "title": "Permission denied", "subtitle": None}
    return render(request, "admin/403.html", context, status=403)


class BackOfficeAdminConfig(AdminConfig):
    default_site = "core.admin.site.BackOfficeAdminSite"
