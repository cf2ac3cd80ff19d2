"""Every state-changing browser form is CSRF-protected: a POST without the token (the
CSRF cookie set, as a forged request from another site would have it) is a 403 and
changes nothing; the same POST with the token works.

The forms: the admin's add, change, delete and actions; its custom forms (reversal and
stop requests, a partner's response file, the DCR build, the user password form);
approvals and mandate decisions; DCR and DBS submit and decide; deposits and bank
statements; bulk repayment upload and import; login, logout and password change. (Session
writes to the API are CSRF-checked by DRF: api/tests/test_authentication.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.models import User
from api.models import ApiClient
from approvals.models import ApprovalRequest
from desk.forms import form_token
from desk.models import DeskReceipt
from mandates import services as mandate_services
from mandates.models import BankHoliday, Mandate
from payments.models import BulkUpload, LedgerSwitch
from reconciliation import services as recon_services
from reconciliation.models import Dbs, Dcr, Deposit, StatementUpload
from tests.factories import PASSWORD, days_ago, draft_mandate, make_loan

from .access_world import World

NEW_PASSWORD = "Kh8#quite-new-2026"


@pytest.fixture(autouse=True)
def clean_stores():
    """Overrides the suite's: the module's access_world keeps its DynamoDB items between tests."""
    yield


@dataclass(frozen=True)
class Form:
    who: str  # a role code of the access_world ("AN": nobody logged in)
    page: Callable[[World], str]  # where the form is (its GET sets the CSRF cookie)
    action: Callable[[World], str]  # where it posts
    data: Callable[[World], dict]  # a valid submission (called for each POST)
    state: Callable[[World, Client], object]  # what a successful POST changes
    prepare: Callable[[World], None] | None = None


def _own(access_world: World, label: str):
    return access_world.objects[label]["own"]


def _single(access_world: World, label: str):
    return access_world.objects[label]["single"]


def _status(model, pk):
    return model.objects.values_list("status", flat=True).get(pk=pk)


def _pending_mandate(access_world: World) -> None:
    loan = make_loan(branch=access_world.branches["own"])
    mandate = draft_mandate(loan, access_world.users["BS"])
    mandate_services.mandate_submit(mandate_id=mandate.pk, actor=access_world.users["BS"])
    access_world.values["pending_mandate"] = mandate.pk


def _submit(kind: str) -> Callable[[World], None]:
    def prepare(access_world: World) -> None:
        obj = _own(access_world, f"reconciliation.{kind}")
        submit = recon_services.dcr_submit if kind == "dcr" else recon_services.dbs_submit
        submit(**{f"{kind}_id": obj.pk}, actor=access_world.users["BM"])

    return prepare


def _report_form(kind: str, verb: str, who: str, remarks: str = "") -> Form:
    """The submit or decide form of the access_world's own DCR or DBS; deciding returns it with
    ``remarks`` (after its manager submitted it)."""
    model = {"dcr": Dcr, "dbs": Dbs}[kind]
    key = f"{kind}.own"

    def page(w: World) -> str:
        return f"/reconciliation/{kind}/{w.values[key]}/"

    deciding = verb == "decide"
    return Form(
        who,
        prepare=_submit(kind) if deciding else None,
        page=page,
        action=lambda w: f"{page(w)}{verb}/",
        data=lambda w: {"decision": "return", "remarks": remarks} if deciding else {},
        state=lambda w, c: _status(model, w.values[key]),
    )


def _statement() -> SimpleUploadedFile:
    line = f"{days_ago(1)},CASH DEPOSIT,CSRF-1,700.00"
    return SimpleUploadedFile(
        "statement.csv", f"date,narration,slip number,credit\n{line}\n".encode()
    )


def _bulk_file(access_world: World) -> SimpleUploadedFile:
    loan = _own(access_world, "loans.loanaccount")
    return SimpleUploadedFile(
        "csrf.csv",
        f"loan_number,amount,mode,receipt_number,collector\n{loan.loan_number},5,UPI,C-1,A\n".encode(),
    )


def _logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def _password(access_world: World, code: str) -> str:
    return User.objects.values_list("password", flat=True).get(pk=access_world.users[code].pk)


def _collect_url(w: World) -> str:
    return f"/desk/collect/?loan={_own(w, 'loans.loanaccount').loan_number}"


FORMS = {
    "desk collect": Form(
        "BS",
        page=_collect_url,
        action=_collect_url,
        data=lambda w: {
            "token": form_token(
                user=w.users["BS"], loan_number=_own(w, "loans.loanaccount").loan_number
            ),
            "amount": "321.00",
            "mode": "CASH",
            "action": "confirm",
        },
        state=lambda w, c: DeskReceipt.objects.filter(amount="321.00").count(),
    ),
    "admin add": Form(
        "OP",
        page=lambda w: "/admin/mandates/bankholiday/add/",
        action=lambda w: "/admin/mandates/bankholiday/add/",
        data=lambda w: {"date": "2027-08-16", "name": "Parsi New Year"},
        state=lambda w, c: BankHoliday.objects.filter(name="Parsi New Year").exists(),
    ),
    "admin change": Form(
        "OP",
        page=lambda w: "/admin/payments/ledgerswitch/1/change/",
        action=lambda w: "/admin/payments/ledgerswitch/1/change/",
        data=lambda w: {"maintenance": "on", "reason": "ledger upgrade"},
        state=lambda w, c: LedgerSwitch.objects.get(pk=1).maintenance,
    ),
    "admin delete": Form(
        "BS",
        page=lambda w: (
            f"/admin/reconciliation/deposit/{_own(w, 'reconciliation.deposit').pk}/delete/"
        ),
        action=lambda w: (
            f"/admin/reconciliation/deposit/{_own(w, 'reconciliation.deposit').pk}/delete/"
        ),
        data=lambda w: {"post": "yes"},
        state=lambda w, c: Deposit.objects.filter(pk=_own(w, "reconciliation.deposit").pk).exists(),
    ),
    "admin action": Form(
        "AD",
        page=lambda w: "/admin/api/apiclient/",
        action=lambda w: "/admin/api/apiclient/",
        data=lambda w: {
            "action": "deactivate",
            "_selected_action": [_single(w, "api.apiclient").pk],
        },
        state=lambda w, c: ApiClient.objects.get(pk=_single(w, "api.apiclient").pk).is_active,
    ),
    "deposit record": Form(
        "BS",
        page=lambda w: "/admin/reconciliation/deposit/add/",
        action=lambda w: "/admin/reconciliation/deposit/add/",
        data=lambda w: {
            "branch": w.branches["own"].pk,
            "deposit_date": days_ago(1).isoformat(),
            "collection_account": _single(w, "loans.collectionaccount").pk,
            "slip_number": "CSRF-SLIP-1",
            "amount": "250.00",
        },
        state=lambda w, c: Deposit.objects.filter(slip_number="CSRF-SLIP-1").exists(),
    ),
    "reversal request": Form(
        "BM",
        page=lambda w: f"/admin/payments/posting/{_own(w, 'payments.posting').pk}/reversal/",
        action=lambda w: f"/admin/payments/posting/{_own(w, 'payments.posting').pk}/reversal/",
        data=lambda w: {"reason": "posted to the wrong loan"},
        state=lambda w, c: ApprovalRequest.objects.count(),
    ),
    "mandate stop request": Form(
        "BM",
        page=lambda w: f"/admin/mandates/mandate/{_own(w, 'mandates.mandate').pk}/change/",
        action=lambda w: f"/admin/mandates/mandate/{_own(w, 'mandates.mandate').pk}/stop-request/",
        data=lambda w: {"action": "SUSPEND", "reason": "the customer asked"},
        state=lambda w, c: ApprovalRequest.objects.count(),
    ),
    "dcr build": Form(
        "BM",
        page=lambda w: "/admin/reconciliation/dcr/build/",
        action=lambda w: "/admin/reconciliation/dcr/build/",
        data=lambda w: {"date_from": days_ago(3).isoformat()},
        state=lambda w, c: Dcr.objects.filter(branch=w.branches["own"]).count(),
    ),
    "user password (admin)": Form(
        "AD",
        page=lambda w: f"/admin/accounts/user/{w.users['BS'].pk}/password/",
        action=lambda w: f"/admin/accounts/user/{w.users['BS'].pk}/password/",
        data=lambda w: {
            "usable_password": "true",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
        state=lambda w, c: _password(w, "BS"),
    ),
    "approval decide": Form(
        "AM",
        page=lambda w: f"/approvals/requests/{w.values['approval.own']}/",
        action=lambda w: f"/approvals/requests/{w.values['approval.own']}/decide/",
        data=lambda w: {"decision": "return", "remarks": "not this time"},
        state=lambda w, c: _status(ApprovalRequest, w.values["approval.own"]),
    ),
    "mandate decide": Form(
        "BM",
        prepare=_pending_mandate,
        page=lambda w: f"/mandates/{w.values['pending_mandate']}/review/",
        action=lambda w: f"/mandates/{w.values['pending_mandate']}/review/decide/",
        data=lambda w: {"decision": "return", "remarks": "the IFSC is wrong"},
        state=lambda w, c: _status(Mandate, w.values["pending_mandate"]),
    ),
    "dcr submit": _report_form("dcr", "submit", "BM"),
    "dcr decide": _report_form("dcr", "decide", "AM", remarks="recount the cash"),
    "dbs submit": _report_form("dbs", "submit", "BM"),
    "dbs decide": _report_form("dbs", "decide", "FI", remarks="the slip is missing"),
    "statement upload": Form(
        "FI",
        page=lambda w: "/reconciliation/statements/upload/",
        action=lambda w: "/reconciliation/statements/upload/",
        data=lambda w: {
            "collection_account": _single(w, "loans.collectionaccount").pk,
            "file": _statement(),
        },
        state=lambda w, c: StatementUpload.objects.count(),
    ),
    "bulk repayment upload": Form(
        "BS",
        page=lambda w: "/admin/payments/bulkupload/add/",
        action=lambda w: "/admin/payments/bulkupload/add/",
        data=lambda w: {"file": _bulk_file(w)},
        state=lambda w, c: BulkUpload.objects.count(),
    ),
    "bulk repayment import": Form(
        "BS",
        page=lambda w: f"/admin/payments/bulkupload/{w.values['bulk.own']}/import/",
        action=lambda w: f"/admin/payments/bulkupload/{w.values['bulk.own']}/import/",
        data=lambda w: {},
        state=lambda w, c: _status(BulkUpload, w.values["bulk.own"]),
    ),
    "password change": Form(
        "BS",
        page=lambda w: "/admin/password_change/",
        action=lambda w: "/admin/password_change/",
        data=lambda w: {
            "old_password": PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
        state=lambda w, c: _password(w, "BS"),
    ),
    "login": Form(
        "AN",
        page=lambda w: "/admin/login/",
        action=lambda w: "/admin/login/",
        data=lambda w: {"username": w.users["BS"].username, "password": PASSWORD},
        state=lambda w, c: _logged_in(c),
    ),
    "logout": Form(
        "BS",
        page=lambda w: "/admin/",
        action=lambda w: "/admin/logout/",
        data=lambda w: {},
        state=lambda w, c: _logged_in(c),
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(FORMS))
def test_a_form_needs_its_csrf_token(access_world, name):
    form = FORMS[name]
    if form.prepare:
        form.prepare(access_world)
    browser = Client(enforce_csrf_checks=True)
    if form.who != "AN":
        browser.force_login(access_world.users[form.who])
    assert browser.get(form.page(access_world)).status_code == 200
    token = browser.cookies["csrftoken"].value
    before = form.state(access_world, browser)

    forged = browser.post(form.action(access_world), form.data(access_world))
    assert forged.status_code == 403
    assert "CSRF" in forged.content.decode()
    assert form.state(access_world, browser) == before, "a POST without the token changed something"

    genuine = browser.post(
        form.action(access_world), {**form.data(access_world), "csrfmiddlewaretoken": token}
    )
    assert genuine.status_code in (200, 302), genuine.status_code
    assert form.state(access_world, browser) != before, "the POST with the token did not work"
