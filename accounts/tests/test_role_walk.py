"""Every role walks every admin URL, every workflow screen and every API endpoint; each
answer is checked against the tables below, which say what each role may see and do.

- ``ADMIN_ACCESS``: per admin model, what each role may do there (v view, a add, c
  change, d delete); :func:`admin_expected` turns it into the answer of the changelist,
  add, change, history and delete pages for an object in the user's scope and one
  outside it, and of refused POSTs (Django's admin contract, written out there). Admin
  autocomplete follows the view letter of the target model.
- ``URL_ACCESS``: every other URL (the admin's own and custom views, workflow screens,
  health and metrics, the API with the user's session), with each role's answer.
- ``API_KEY_ACCESS``: the API with keys of limited scopes.

Answers: 200, 302 (to the login for anonymous users; for staff the admin's "does not
exist, perhaps deleted" redirect, or a workflow's redirect with a message), 400 (an API
write with an empty body, past the access checks), 401 (API without credentials), 403,
404 (a workflow screen or API object outside the scope), 405. Nobody ever gets a 500.
Changelists and autocomplete list the objects of the scope and no other; POSTs refused
or redirected change nothing outside it. A URL pattern or an admin model that no table
covers fails the walk, so a new screen gets its line here.

The access world (access_world.py): branch ``own`` (home of the branch users), ``near``
(same area: in the area manager's scope, not in the branch users') and ``far`` (another
region), with
their loans, mandates, payments, DCRs and the rest, and one of each head-office record.
It is built once for the module (conftest.py), inside a transaction rolled back at the
end; each role's test runs in a savepoint of it.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import NoReverseMatch, URLResolver, get_resolver, resolve, reverse

from api import scopes
from api.models import ApiClient
from tests.factories import key_header, make_api_client

from .access_world import World

# --- Who ----------------------------------------------------------------------------------

ROLES = {
    "AN": "Anonymous",
    "BS": "Branch Staff",
    "BM": "Branch Manager",
    "AM": "Area Manager",
    "OP": "Operations",
    "FI": "Finance",
    "AU": "Auditor",
    "AD": "Admin",
}
STAFF = [code for code in ROLES if code != "AN"]

# Whose branches' objects each role sees: the branch users their branch, the area
# manager their area; head office (and the auditor) everything.
SCOPE = {"BS": {"own"}, "BM": {"own"}, "AM": {"own", "near"}}
EVERYWHERE = {"own", "near", "far"}
# Head-office records that only users who see every branch may open (HeadOfficeAdmin: the
# others have no view permission there, whatever their role's permissions).
HEAD_OFFICE_ONLY = {
    "core.outboxmessage",
    "reconciliation.statementupload",
    "mandates.presentationbatch",
    "core.jobrun",
}

# --- What each role may do in the admin -----------------------------------------------------
# v view, a add, c change, d delete ("-" nothing). Anonymous users are sent to the login.
# The DynamoDB browsers (audit events, notifications, transactions, posting queue) are
# lists only.

ADMIN_ACCESS = """
model                              BS    BM    AM    OP    FI    AU    AD
auth.group                         -     -     -     -     -     v     vacd
axes.accessattempt                 -     -     -     -     -     v     vcd
axes.accesslog                     -     -     -     -     -     v     vcd
axes.accessfailurelog              -     -     -     -     -     v     vcd
audit.events                       -     v     v     v     v     v     v
core.outboxmessage                 -     -     -     v     -     v     v
api.apiclient                      -     -     -     -     -     v     vacd
accounts.user                      -     v     v     v     v     v     vacd
accounts.region                    -     -     v     v     v     v     vacd
accounts.area                      -     -     v     v     v     v     vacd
accounts.branch                    v     v     v     v     v     v     vacd
notifications.notificationtemplate v     v     v     vacd  -     v     vacd
notifications.outbox               -     -     -     v     -     v     v
loans.loanproduct                  v     v     v     vacd  v     v     vacd
loans.bankingpartner               v     v     v     vac   v     v     vacd
loans.collectionaccount            -     -     -     vacd  vacd  v     vacd
loans.customer                     vac   vac   vac   v     v     v     vacd
loans.loanaccount                  vac   vac   vac   v     v     v     vacd
loans.coborrower                   vac   vacd  vacd  v     v     v     vacd
loans.customerbankaccount          v     v     v     v     v     v     v
loans.instalment                   v     v     v     v     v     v     v
loans.loancharge                   -     v     v     v     v     v     v
approvals.approvalrequest          -     v     v     v     v     v     v
payments.posting                   v     v     v     v     v     v     v
payments.ledgerswitch              v     v     v     vc    vc    v     vc
payments.transactionrecord         v     v     v     v     v     v     v
payments.postingqueueentry         v     v     v     v     v     v     v
payments.bulkupload                va    va    va    va    va    v     va
imports.importrun                  -     va    va    va    -     v     va
mandates.mandate                   vac   vac   vac   vac   v     v     vac
mandates.bankholiday               v     v     v     vacd  v     v     vacd
mandates.returncodepolicy          v     v     v     vac   v     v     vac
mandates.sandboxbouncerule         v     v     v     vacd  v     v     vacd
mandates.scheduledpresentation     v     v     v     v     v     v     v
mandates.presentationbatch         -     -     -     v     v     v     v
mandates.executionresult           v     v     v     v     v     v     v
reconciliation.dcr                 v     v     v     v     v     v     v
reconciliation.dbs                 v     v     v     v     v     v     v
reconciliation.deposit             vacd  vacd  vacd  v     v     v     vacd
reconciliation.statementupload     -     -     -     v     v     v     v
core.jobrun                        -     -     -     v     v     v     v
desk.deskreceipt                   v     v     v     -     -     v     v
"""


def _parse_admin_access() -> dict[str, dict[str, set[str]]]:
    lines = [line.split() for line in ADMIN_ACCESS.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    codes = header[1:]
    return {
        row[0]: {
            code: set(letters.strip("-")) for code, letters in zip(codes, row[1:], strict=True)
        }
        for row in rows
    }


ADMIN = _parse_admin_access()


def admin_expected(label: str, page: str, method: str, where: str, code: str) -> int:
    """The admin's answer for a role, from what it may do (``ADMIN_ACCESS``) and whether
    the object is in its scope. Django's contract: permission first (403), then the object
    (the change and delete pages of an object outside the queryset redirect to the index
    with "perhaps it was deleted", 302); the audit History page answers 404 for an object
    outside the scope before it looks at permissions."""
    if code == "AN":
        return 302
    may = ADMIN[label][code]
    view = bool(may & {"v", "c"})
    if page == "changelist":
        if label == "payments.ledgerswitch" and view:
            return 302  # one row: the list opens it
        return 200 if view else 403
    if page == "add":
        if label == "reconciliation.statementupload":
            return 302  # the upload screen, which checks the permission itself
        return 200 if "a" in may else 403  # a POST without data: the form again, 200
    needed = {"change": view, "history": view, "delete": "d" in may}[page]
    if method == "POST":
        needed = {"change": "c" in may, "delete": "d" in may}[page]
    in_scope = _in_scope(label, where, code)
    if page == "history" and not in_scope:
        return 404
    if not needed:
        return 403
    return 200 if in_scope else 302


def _in_scope(label: str, where: str, code: str) -> bool:
    if where == "single":
        return label not in HEAD_OFFICE_ONLY or code not in SCOPE
    return where in SCOPE.get(code, EVERYWHERE)


# --- Every other URL ------------------------------------------------------------------------
# {name} stands for an object of the access_world (see _placeholders); "own" and "far" objects.

URL_ACCESS = """
method url                                                   AN  BS  BM  AM  OP  FI  AU  AD
GET  /admin/                                                 302 200 200 200 200 200 200 200
GET  /admin/login/                                           200 302 302 302 302 302 302 302
GET  /admin/password_change/                                 302 200 200 200 200 200 200 200
POST /admin/password_change/                                 302 200 200 200 200 200 200 200
GET  /admin/password_change/done/                            302 200 200 200 200 200 200 200
GET  /admin/jsi18n/                                          302 200 200 200 200 200 200 200
GET  /admin/r/{loan_ct}/{loan.own}/                          302 404 404 404 404 404 404 404
GET  /admin/auth/                                            302 404 404 404 404 404 200 200
GET  /admin/axes/                                            302 404 404 404 404 404 200 200
GET  /admin/audit/                                           302 404 200 200 200 200 200 200
GET  /admin/core/                                            302 404 404 404 200 200 200 200
GET  /admin/api/                                             302 404 404 404 404 404 200 200
GET  /admin/accounts/                                        302 200 200 200 200 200 200 200
GET  /admin/notifications/                                   302 200 200 200 200 404 200 200
GET  /admin/loans/                                           302 200 200 200 200 200 200 200
GET  /admin/approvals/                                       302 404 200 200 200 200 200 200
GET  /admin/payments/                                        302 200 200 200 200 200 200 200
GET  /admin/mandates/                                        302 200 200 200 200 200 200 200
GET  /admin/reconciliation/                                  302 200 200 200 200 200 200 200
GET  /admin/desk/                                            302 200 200 200 404 404 200 200
GET  /admin/accounts/user/{user.own}/password/               302 403 403 403 403 403 403 200
GET  /admin/accounts/user/{user.far}/password/               302 403 403 403 403 403 403 200
GET  /admin/notifications/outbox/development/                302 403 403 403 200 403 200 200
GET  /admin/notifications/outbox/{notification.own}/         302 403 403 403 200 403 200 200
POST /admin/notifications/outbox/{notification.own}/retry/   302 403 403 403 302 403 403 302
GET  /admin/loans/loancharge/{loancharge.own}/waiver/        302 403 200 200 403 403 403 200
POST /admin/loans/loancharge/{loancharge.own}/waiver/        302 403 200 200 403 403 403 200
GET  /admin/loans/loancharge/{loancharge.far}/waiver/        302 302 302 302 403 403 403 200
GET  /admin/loans/customer/{customer.own}/request-change/?change=pan 302 200 200 200 403 403 403 200
POST /admin/loans/customer/{customer.own}/request-change/?change=pan 302 200 200 200 403 403 403 200
GET  /admin/loans/customer/{customer.far}/request-change/?change=pan 302 302 302 302 403 403 403 200
GET  /admin/payments/posting/{posting.own}/reversal/         302 403 200 200 403 200 403 200
POST /admin/payments/posting/{posting.own}/reversal/         302 403 200 200 403 200 403 200
GET  /admin/payments/posting/{posting.far}/reversal/         302 302 302 302 403 200 403 200
POST /admin/payments/postingqueueentry/01UNKNOWNITEM/retry/  302 403 403 403 302 302 403 302
GET  /admin/payments/bulkupload/template/csv/                302 200 200 200 200 200 403 200
GET  /admin/payments/bulkupload/{bulk.own}/import/           302 200 200 200 200 200 403 200
GET  /admin/payments/bulkupload/{bulk.far}/import/           302 404 404 404 200 200 403 200
GET  /admin/payments/bulkupload/{bulk.own}/progress/         302 200 200 200 200 200 200 200
GET  /admin/payments/bulkupload/{bulk.far}/progress/         302 404 404 404 200 200 200 200
GET  /admin/payments/bulkupload/{bulk.own}/result/           302 200 200 200 200 200 200 200
GET  /admin/payments/bulkupload/{bulk.far}/result/           302 404 404 404 200 200 200 200
GET  /admin/imports/                                         302 404 200 200 200 404 200 200
GET  /admin/imports/importrun/template/customers/            302 403 200 200 200 403 403 200
GET  /admin/imports/importrun/{importrun.own}/import/         302 403 200 200 200 403 403 200
GET  /admin/imports/importrun/{importrun.far}/import/         302 403 404 404 200 403 403 200
GET  /admin/imports/importrun/{importrun.own}/progress/       302 403 200 200 200 403 200 200
GET  /admin/imports/importrun/{importrun.far}/progress/       302 403 404 404 200 403 200 200
GET  /admin/imports/importrun/{importrun.own}/result/         302 403 200 200 200 403 200 200
GET  /admin/imports/importrun/{importrun.far}/result/         302 403 404 404 200 403 200 200
GET  /admin/mandates/mandate/{mandate.own}/stop-request/     302 405 405 405 405 405 405 405
POST /admin/mandates/mandate/{mandate.own}/stop-request/     302 403 200 200 200 403 403 200
POST /admin/mandates/mandate/{mandate.far}/stop-request/     302 302 302 302 200 403 403 200
GET  /admin/mandates/executionresult/upload/                 302 403 403 403 200 403 403 200
POST /admin/mandates/executionresult/upload/                 302 403 403 403 200 403 403 200
GET  /admin/reconciliation/dcr/build/                        302 302 200 200 302 200 302 200
POST /admin/reconciliation/dcr/build/                        302 302 200 200 302 200 302 200
GET  /approvals/                                             302 200 200 200 200 200 200 200
GET  /approvals/mine/                                        302 200 200 200 200 200 200 200
GET  /approvals/requests/{approval.own}/                     302 403 200 200 200 200 200 200
GET  /approvals/requests/{approval.far}/                     302 404 404 404 200 200 200 200
POST /approvals/requests/{approval.own}/decide/              302 403 200 200 200 200 200 200
POST /approvals/requests/{approval.far}/decide/              302 404 404 404 200 200 200 200
GET  /mandates/{mandate.own}/review/                         302 200 200 200 200 200 200 200
GET  /mandates/{mandate.far}/review/                         302 404 404 404 200 200 200 200
POST /mandates/{mandate.own}/review/decide/                  302 200 200 200 200 200 200 200
POST /mandates/{mandate.far}/review/decide/                  302 404 404 404 200 200 200 200
GET  /reconciliation/dashboard/                              302 200 200 200 200 200 200 200
GET  /reconciliation/dcr/{dcr.own}/                          302 200 200 200 200 200 200 200
GET  /reconciliation/dcr/{dcr.far}/                          302 404 404 404 200 200 200 200
POST /reconciliation/dcr/{dcr.own}/decide/                   302 200 200 200 200 200 200 200
POST /reconciliation/dcr/{dcr.far}/decide/                   302 404 404 404 200 200 200 200
POST /reconciliation/dcr/{dcr.far}/submit/                   302 302 302 302 302 302 302 302
GET  /reconciliation/dbs/{dbs.own}/                          302 200 200 200 200 200 200 200
GET  /reconciliation/dbs/{dbs.far}/                          302 404 404 404 200 200 200 200
POST /reconciliation/dbs/{dbs.own}/decide/                   302 200 200 200 200 200 200 200
POST /reconciliation/dbs/{dbs.far}/decide/                   302 404 404 404 200 200 200 200
POST /reconciliation/dbs/{dbs.far}/submit/                   302 302 302 302 302 302 302 302
GET  /reconciliation/deposits/{deposit.own}/slip/            302 404 404 404 404 404 404 404
GET  /reconciliation/deposits/{deposit.far}/slip/            302 404 404 404 404 404 404 404
GET  /reconciliation/export/dcr.csv                          302 200 200 200 200 200 200 200
GET  /reconciliation/export/dbs.xlsx                         302 200 200 200 200 200 200 200
GET  /reconciliation/statements/upload/                      302 403 403 403 403 200 403 200
POST /reconciliation/statements/upload/                      302 403 403 403 403 200 403 200
GET  /reconciliation/statements/{statement}/                 302 404 404 404 200 200 200 200
GET  /desk/collect/?loan={loan_number.own}                   302 200 200 200 403 403 403 200
GET  /desk/collect/?loan={loan_number.far}                   302 404 404 404 403 403 403 200
POST /desk/collect/?loan={loan_number.own}                   302 200 200 200 403 403 403 200
GET  /desk/find/?q={loan_number.own}                         302 302 302 302 403 403 403 302
GET  /desk/receipts/find/                                    302 200 200 200 403 403 200 200
GET  /desk/receipts/{receipt.own}/                           302 200 200 200 403 403 200 200
GET  /desk/receipts/{receipt.far}/                           302 404 404 404 403 403 200 200
GET  /desk/sheet/                                            302 200 200 200 200 200 200 200
GET  /desk/sheet/?format=csv                                 302 200 200 200 200 200 200 200
GET  /admin/no-such-page/                                    302 404 404 404 404 404 404 404
GET  /health/live                                            200 200 200 200 200 200 200 200
GET  /health/ready                                           200 200 200 200 200 200 200 200
GET  /metrics                                                200 200 200 200 200 200 200 200
GET  /api/schema/                                            401 200 200 200 200 200 200 200
GET  /api/docs/                                              302 200 200 200 200 200 200 200
GET  /api/v1/loans/                                          401 200 200 200 200 200 200 200
GET  /api/v1/loans/{loan_number.own}                         401 200 200 200 200 200 200 200
GET  /api/v1/loans/{loan_number.far}                         401 404 404 404 200 200 200 200
GET  /api/v1/transactions?loan_account={loan_number.own}     401 200 200 200 200 200 200 200
GET  /api/v1/transactions?loan_account={loan_number.far}     401 404 404 404 200 200 200 200
GET  /api/v1/transactions/{txn.own}                          401 200 200 200 200 200 200 200
GET  /api/v1/transactions/{txn.far}                          401 404 404 404 200 200 200 200
POST /api/v1/transactions                                    401 400 400 400 403 400 403 400
POST /api/v1/transactions/batch                              401 400 400 400 403 400 403 400
POST /api/v1/banking-partners/{partner}/results              401 403 403 403 403 403 403 403
GET  /api/v1/no-such-endpoint                                404 404 404 404 404 404 404 404
"""

# API keys (no session). Columns: keys with these scopes, for the own branch only ("partner"
# is the banking partner's own client).
API_KEY_ACCESS = """
method url                                                   none loans txns partner
GET  /api/schema/                                            200  200   200  200
GET  /api/v1/loans/                                          403  200   403  403
GET  /api/v1/loans/{loan_number.own}                         403  200   403  403
GET  /api/v1/loans/{loan_number.far}                         403  404   403  403
GET  /api/v1/transactions?loan_account={loan_number.own}     403  403   200  403
GET  /api/v1/transactions?loan_account={loan_number.far}     403  403   404  403
GET  /api/v1/transactions/{txn.own}                          403  403   200  403
GET  /api/v1/transactions/{txn.far}                          403  403   404  403
POST /api/v1/transactions                                    403  403   400  403
POST /api/v1/transactions/batch                              403  403   400  403
POST /api/v1/banking-partners/{partner}/results              403  403   403  400
"""
KEY_SCOPES = {
    "none": [],
    "loans": [scopes.LOANS_READ],
    "txns": [scopes.TRANSACTIONS_READ, scopes.TRANSACTIONS_WRITE],
    "partner": [scopes.PARTNER_RESULTS],
}


def _parse_url_table(text: str) -> tuple[list[str], list[tuple[str, str, list[int]]]]:
    lines = [line.split() for line in text.strip().splitlines()]
    columns = lines[0][2:]
    return columns, [(row[0], row[1], [int(s) for s in row[2:]]) for row in lines[1:]]


@pytest.fixture(autouse=True)
def clean_stores():
    """Overrides the suite's: the module's access_world keeps its DynamoDB items between tests."""
    yield


# --- Walking --------------------------------------------------------------------------------


def _admin_url(name: str, *args) -> str | None:
    try:
        return reverse(f"admin:{name}", args=args)
    except NoReverseMatch:
        return None


def admin_visits(access_world: World, code: str) -> list[tuple[str, str, str, dict | None, int]]:
    """(what, method, url, data, expected) for every admin model's pages."""
    visits = []
    for model in admin.site._registry:
        label = model._meta.label_lower
        assert label in ADMIN, f"{label} is in the admin but not in ADMIN_ACCESS"
        info = f"{model._meta.app_label}_{model._meta.model_name}"
        if url := _admin_url(f"{info}_changelist"):
            expected = admin_expected(label, "changelist", "GET", "single", code)
            visits.append((f"{label} changelist", "GET", url, None, expected))
        if url := _admin_url(f"{info}_add"):
            for method in ("GET", "POST"):
                expected = admin_expected(label, "add", method, "single", code)
                if method == "POST" and expected != 403 and code != "AN":
                    continue  # an add that may succeed is not part of the walk
                visits.append((f"{label} add", method, url, {}, expected))
        for where, obj in access_world.objects.get(label, {}).items():
            if where in ("own", "single"):  # the old URL of an object redirects to its page
                url = (
                    reverse("admin:index")
                    + f"{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/"
                )
                visits.append((f"{label} {where}", "GET", url, None, 302))
            # "near" only tells the area manager's scope from the branch users'
            pages = ("change", "history") if where == "near" else ("change", "history", "delete")
            for page in pages:
                url = _admin_url(f"{info}_{page}", obj.pk)
                if url is None:
                    continue
                what = f"{label} {page} {where}"
                visits.append(
                    (what, "GET", url, None, admin_expected(label, page, "GET", where, code))
                )
                if page == "history" or where == "near":
                    continue
                expected = admin_expected(label, page, "POST", where, code)
                if expected in (403, 302):  # refused, or redirected away: nothing changes
                    data = {"post": "yes"} if page == "delete" else {}
                    visits.append((what, "POST", url, data, expected))
    return visits


def _fill(template: str, values: dict) -> str:
    return re.sub(r"\{([^}]+)\}", lambda match: str(values[match.group(1)]), template)


def url_visits(access_world: World, code: str, table: str = URL_ACCESS):
    columns, rows = _parse_url_table(table)
    column = columns.index(code)
    return [
        (f"{method} {template}", method, _fill(template, access_world.values), {}, statuses[column])
        for method, template, statuses in rows
    ]


def _client(access_world: World, code: str) -> Client:
    client = Client(raise_request_exception=False)
    if code != "AN":
        client.force_login(access_world.users[code])
    return client


def _request(client: Client, method: str, url: str, data: dict | None, **headers):
    if method == "GET":
        return client.get(url, **headers)
    if url.startswith("/api/"):
        return client.post(
            url, data=json.dumps(data or {}), content_type="application/json", **headers
        )
    return client.post(url, data or {}, **headers)


def walk(client: Client, visits, routes: set[str] | None = None, **headers) -> list[str]:
    """Every visit; the list of answers that differ from the table. ``routes`` collects
    the URL patterns visited."""
    wrong = []
    for what, method, url, data, expected in visits:
        response = _request(client, method, url, data, **headers)
        got = response.status_code
        if got != expected or got >= 500:
            wrong.append(f"{method} {url} ({what}): expected {expected}, got {got}")
        if routes is not None:
            routes.add(resolve(url.split("?")[0]).route)
    return wrong


def all_routes() -> set[str]:
    """Every pattern of the URLconf, as ``ResolverMatch.route`` spells it."""

    def patterns(resolver_patterns, prefix=""):
        for pattern in resolver_patterns:
            route = prefix + str(pattern.pattern).replace("^", "")
            if isinstance(pattern, URLResolver):
                yield from patterns(pattern.url_patterns, route)
            else:
                yield route

    return set(patterns(get_resolver().url_patterns))


def autocomplete_visits(access_world: World, code: str):
    """Every autocomplete field of the admin: allowed when the user may view the target
    model; what it offers is checked by :func:`_offers_only_the_scope`."""
    visits = []
    for model, model_admin in admin.site._registry.items():
        for field_name in model_admin.autocomplete_fields:
            target = model._meta.get_field(field_name).related_model._meta.label_lower
            query = urlencode(
                {
                    "app_label": model._meta.app_label,
                    "model_name": model._meta.model_name,
                    "field_name": field_name,
                    "term": "",
                }
            )
            may_view = code != "AN" and ADMIN[target][code] & {"v", "c"}
            expected = 302 if code == "AN" else 200 if may_view else 403
            visits.append(
                (f"autocomplete {target}", "GET", f"/admin/autocomplete/?{query}", None, expected)
            )
    return visits


def _offers_only_the_scope(access_world: World, code: str, client: Client) -> list[str]:
    """Changelists and autocomplete offer the objects of the user's scope and no other."""
    wrong = []
    scope = SCOPE.get(code, EVERYWHERE)
    for what, _, url, _, expected in autocomplete_visits(access_world, code):
        if expected != 200:
            continue
        target = what.split()[1]
        offered = {str(r["id"]) for r in client.get(url).json()["results"]}
        wrong += _scope_mismatch(access_world, target, offered, scope, url)
    for model in admin.site._registry:
        label = model._meta.label_lower
        if "far" not in access_world.objects.get(label, {}) or not ADMIN[label][code] & {"v", "c"}:
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.get(url)
        listed = {str(obj.pk) for obj in response.context_data["cl"].result_list}
        wrong += _scope_mismatch(access_world, label, listed, scope, url)
    return wrong


def _scope_mismatch(access_world, label, offered: set[str], scope: set[str], url: str) -> list[str]:
    wrong = []
    for where, obj in access_world.objects.get(label, {}).items():
        if where == "single":
            continue
        shown = str(obj.pk) in offered
        if shown != (where in scope):
            wrong.append(f"{url}: the {where} {label} is {'' if shown else 'not '}offered")
    return wrong


# --- The tests ------------------------------------------------------------------------------


def _unchanged(access_world: World) -> dict[str, str]:
    """What a refused or redirected POST must not have changed."""
    return {
        f"{label} {where}": repr(type(obj).objects.filter(pk=obj.pk).values().first())
        for label, objects in access_world.objects.items()
        for where, obj in objects.items()
        if where in ("near", "far", "single")
    }


@pytest.mark.django_db
@pytest.mark.parametrize("code", list(ROLES))
def test_each_role_gets_exactly_the_access_of_the_tables(access_world, code):
    before = _unchanged(access_world)
    client = _client(access_world, code)
    routes: set[str] = set()
    wrong = walk(client, admin_visits(access_world, code), routes)
    wrong += walk(client, url_visits(access_world, code), routes)
    wrong += walk(client, autocomplete_visits(access_world, code), routes)
    if code != "AN":
        wrong += _offers_only_the_scope(access_world, code, client)
    assert not wrong, f"{ROLES[code]}:\n" + "\n".join(wrong)

    # every URL of the URLconf is in the walk (logout is below)
    missing = all_routes() - routes - {"admin/logout/"}
    assert not missing, f"URLs no table covers: {sorted(missing)}"

    if code in SCOPE:
        # nothing outside the scope changed (the POSTs above were refused or redirected)
        after = _unchanged(access_world)
        changed = [key for key in before if before[key] != after[key] and "far" in key]
        assert not changed, changed

    # last: logging out (a POST) ends the session; nobody logged in goes to the index
    assert client.post(reverse("admin:logout")).status_code == (302 if code == "AN" else 200)
    assert client.get(reverse("admin:index")).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize("key", list(KEY_SCOPES))
def test_each_api_key_gets_exactly_the_access_of_its_scopes(access_world, key):
    """Keys for the own branch only; no session."""
    partner = access_world.objects["loans.bankingpartner"]["single"]
    _, raw_key = make_api_client(
        scopes=KEY_SCOPES[key],
        branches=[access_world.branches["own"]],
        kind=ApiClient.Kind.BANKING_PARTNER if key == "partner" else ApiClient.Kind.INTEGRATION,
        banking_partner=partner if key == "partner" else None,
    )
    client = Client(raise_request_exception=False)
    wrong = walk(client, url_visits(access_world, key, API_KEY_ACCESS), **key_header(raw_key))
    assert not wrong, f"key with {key}:\n" + "\n".join(wrong)
