"""Every changelist of the admin site costs the same number of queries at N and at 2N rows
(so nothing is read per row), pinned exactly, as a superuser and as a branch user (who
gets either the scoped list or a 403). DynamoDB-backed browsers are pinned on their SQL
queries too.

The admin site's registry is enumerated: a new ModelAdmin without a row maker and a pin
here fails ``test_every_changelist_is_pinned``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Branch
from core.jobs import job_claim, job_finish
from core.outbox import outbox_relay
from desk.services import CollectInput, desk_collect
from imports.models import ImportRun
from loans.models import CoBorrower, CustomerBankAccount, LoanAccount, LoanCharge
from loans.services import loan_charge_waiver_request
from mandates import services as mandate_services
from mandates.models import (
    BankHoliday,
    ReturnCodePolicy,
    SandboxBounceRule,
    ScheduledPresentation,
)
from notifications.models import NotificationTemplate
from payments.models import LedgerSwitch
from payments.services import bulk_upload_preview, payments_post_due
from reconciliation import services as recon_services
from tests.factories import (
    AreaFactory,
    BankingPartnerFactory,
    BranchFactory,
    LoanProductFactory,
    RegionFactory,
    UserFactory,
    active_mandate,
    collection_account,
    days_ago,
    deposit,
    draft_mandate,
    make_api_client,
    make_customer,
    make_loan,
    pay,
    queued,
)
from tests.world import World

pytestmark = pytest.mark.django_db

N = 2
FULL_PAGE = 50


@dataclass
class Rows:
    """Adds the ``i``-th row (or unit of rows) of a changelist, at ``world``'s ``own``."""

    world: World

    @property
    def own(self) -> Branch:
        return self.world.branches["own"]

    def loan(self, i: int, **terms) -> LoanAccount:
        terms = {"disbursed_on": datetime.date(2026, 10, 1), "tenure_months": 12, **terms}
        return make_loan(branch=self.own, **terms)

    def bounced(self, i: int) -> None:
        """A mandate's first debit presented on its own run date and bounced: a run, a
        batch, an execution result, a bounce charge and the manager's waiver request."""
        loan = self.loan(i, due_day=5 + i)
        mandate = active_mandate(loan, self.world.people)
        row = ScheduledPresentation.objects.filter(mandate=mandate).order_by("due_date").first()
        mandate_services.mandates_present_due(run_date=row.presentation_date)
        row.refresh_from_db()
        mandate_services.execution_result_apply(
            partner_code=mandate.banking_partner.code,
            execution_id=mandate_services.execution_id_for(row, row.attempts),
            status="BOUNCED",
            return_code="04",
        )
        charge = LoanCharge.objects.get(loan=loan)
        loan_charge_waiver_request(
            charge_id=charge.pk, reason="first bounce", actor=self.world.users["BM"]
        )

    def audited(self, i: int) -> None:
        make_customer(branch=self.own)
        outbox_relay()

    def paid(self, i: int) -> None:
        pay(self.world.loans["own"], "100.00", day=days_ago(1))

    def posted(self, i: int) -> None:
        self.paid(i)
        payments_post_due()

    def co_borrower(self, i: int) -> None:
        loan = self.loan(i)
        CoBorrower.objects.create(
            loan=loan, customer=make_customer(branch=self.own), relationship="SPOUSE"
        )

    def bank_account(self, i: int) -> None:
        CustomerBankAccount.objects.create(
            customer=make_customer(branch=self.own),
            holder_name="X",
            bank_name="Bank",
            account_number="123456789012",
            ifsc="HDFC0001234",
        )

    def desk_receipt(self, i: int) -> None:
        loan = self.world.loans["own"]
        desk_collect(
            collect=CollectInput(
                loan_number=loan.loan_number, amount=Decimal(f"{100 + i}.00"), mode="CASH"
            ),
            idempotency_key=f"changelist-desk-{i}",
            duplicate_confirmed=False,
            actor=self.world.users["BS"],
        )

    def bulk_upload(self, i: int) -> None:
        loan = self.world.loans["own"]
        bulk_upload_preview(
            file_name=f"upload-{i}.csv",
            content="loan_number,amount,mode,receipt_number,collector\n"
            f"{loan.loan_number},{100 + i}.00,CASH,BULK-{i},Agent A\n".encode(),
            actor=self.world.users["BS"],
        )

    def import_run(self, i: int) -> None:
        ImportRun.objects.create(
            kind="customers",
            file_name=f"customers-{i}.csv",
            sha256=f"{i:064x}",
            actor=self.world.users["BM"],
            branch=self.own,
        )

    def dcr(self, i: int) -> None:
        recon_services.dcr_build(branch_id=self.own.pk, business_date=days_ago(i + 2))

    def statement(self, i: int) -> None:
        account = collection_account()
        recon_services.statement_upload(
            collection_account_id=account.pk,
            file=SimpleUploadedFile(
                f"statement-{i}.csv",
                f"date,narration,slip number,credit\n{days_ago(1)},CASH,S-{i},500.00\n".encode(),
            ),
            actor=self.world.users["FI"],
        )

    def axes(self, model, i: int) -> None:
        fields = {
            "username": f"someone{i}",
            "ip_address": f"10.0.0.{i + 1}",
            "user_agent": "test",
            "http_accept": "*/*",
            "path_info": "/admin/login/",
        }
        if model is AccessAttempt:
            fields.update(get_data="", post_data="", failures_since_start=1)
        model.objects.create(**fields)


def _template(rows: Rows, i: int) -> None:
    NotificationTemplate.objects.create(code=f"test_{i}", channel="SMS", body="Hello {{ name }}")


ROWS = {
    "auth.group": lambda r, i: Group.objects.create(name=f"Group {i}"),
    "axes.accessattempt": lambda r, i: r.axes(AccessAttempt, i),
    "axes.accesslog": lambda r, i: r.axes(AccessLog, i),
    "axes.accessfailurelog": lambda r, i: r.axes(AccessFailureLog, i),
    "audit.events": Rows.audited,
    "core.outboxmessage": Rows.audited,
    "api.apiclient": lambda r, i: make_api_client(branches=[r.own]),
    "accounts.user": lambda r, i: UserFactory(role="Branch Staff", home_branch=r.own),
    "accounts.region": lambda r, i: RegionFactory(),
    "accounts.area": lambda r, i: AreaFactory(region=r.own.area.region),
    "accounts.branch": lambda r, i: BranchFactory(area=r.own.area),
    "notifications.notificationtemplate": _template,
    "notifications.outbox": lambda r, i: queued(),
    "approvals.approvalrequest": Rows.bounced,
    "core.jobrun": lambda r, i: job_finish(
        job_claim(name="dcr_daily@1800", key=days_ago(i + 2), lease=datetime.timedelta(hours=1))
    ),
    "loans.loanproduct": lambda r, i: LoanProductFactory(code=f"P{i}"),
    "loans.bankingpartner": lambda r, i: BankingPartnerFactory(code=f"partner{i}"),
    "loans.collectionaccount": lambda r, i: collection_account(number=f"99990000{i:04d}"),
    "loans.customer": lambda r, i: make_customer(branch=r.own),
    "loans.loanaccount": Rows.loan,
    "loans.coborrower": Rows.co_borrower,
    "loans.customerbankaccount": Rows.bank_account,
    # past a page (50) for both users already at N: the lean rows' id query starts there
    "loans.instalment": lambda r, i: r.loan(i, tenure_months=20),
    "loans.loancharge": Rows.bounced,
    "payments.posting": Rows.posted,
    "payments.ledgerswitch": None,  # a singleton: its changelist redirects to its one row
    "payments.transactionrecord": Rows.paid,
    "payments.postingqueueentry": Rows.paid,
    "mandates.mandate": lambda r, i: draft_mandate(r.loan(i), r.world.users["BS"]),
    "mandates.bankholiday": lambda r, i: BankHoliday.objects.create(
        date=datetime.date(2030, 1, 1) + datetime.timedelta(days=i), name=f"Holiday {i}"
    ),
    "mandates.returncodepolicy": lambda r, i: ReturnCodePolicy.objects.create(
        code=f"T{i}", description=f"Test {i}", retryable=False
    ),
    "mandates.sandboxbouncerule": lambda r, i: SandboxBounceRule.objects.create(
        account_number=f"9999{i:08d}", return_code="04"
    ),
    "mandates.scheduledpresentation": lambda r, i: active_mandate(r.loan(i), r.world.people),
    "mandates.presentationbatch": Rows.bounced,
    "mandates.executionresult": Rows.bounced,
    "desk.deskreceipt": Rows.desk_receipt,
    "imports.importrun": Rows.import_run,
    "payments.bulkupload": Rows.bulk_upload,
    "reconciliation.dcr": Rows.dcr,
    "reconciliation.dbs": Rows.dcr,
    "reconciliation.deposit": lambda r, i: deposit(
        r.own, collection_account(), "10.00", slip=f"Q-{i}", actor=r.world.users["BS"]
    ),
    "reconciliation.statementupload": Rows.statement,
}

# What a changelist needs in its query string to list anything (the transaction browser
# lists a loan's transactions, or a branch's day's).
QUERY = {
    "payments.transactionrecord": lambda world: f"?loan_number={world.loans['own'].loan_number}",
    "audit.events": lambda world: f"?day={timezone.localdate().isoformat()}",
    "notifications.outbox": lambda world: "?status=QUEUED&channel=SMS",
}

# label -> (queries as a superuser, queries as the branch user or None for a 403)
PINS: dict[str, tuple[int, int | None]] = {
    "accounts.area": (4, None),
    "accounts.branch": (6, 9),
    "accounts.region": (3, None),
    "accounts.user": (5, 8),
    "api.apiclient": (4, None),
    "approvals.approvalrequest": (4, 7),
    "audit.events": (8, 15),  # + one query per model the page's events name (audit.admin._Names)
    "auth.group": (4, None),
    "axes.accessattempt": (7, None),
    "axes.accessfailurelog": (7, None),
    "axes.accesslog": (7, None),
    "core.jobrun": (4, None),
    "core.outboxmessage": (3, None),  # one page: the roles' audit events of the migrate, and N
    "desk.deskreceipt": (6, 9),
    "imports.importrun": (4, 7),  # + the branch filter's choices and the date hierarchy
    "loans.bankingpartner": (4, 7),
    "loans.coborrower": (3, 6),
    "loans.collectionaccount": (5, None),
    "loans.customer": (4, 7),
    "loans.customerbankaccount": (3, 6),
    "loans.instalment": (4, 7),
    "loans.loanaccount": (5, 8),
    "loans.loancharge": (4, 7),
    "loans.loanproduct": (4, 7),
    "mandates.bankholiday": (6, 9),
    "mandates.executionresult": (4, 7),
    "mandates.mandate": (5, 8),
    "mandates.presentationbatch": (6, None),
    "mandates.returncodepolicy": (4, 7),
    "mandates.sandboxbouncerule": (4, 7),
    "mandates.scheduledpresentation": (4, 7),
    "notifications.notificationtemplate": (4, 7),
    "notifications.outbox": (1, None),
    "payments.bulkupload": (4, 7),
    "payments.ledgerswitch": (2, 4),
    "payments.posting": (4, 7),
    "payments.postingqueueentry": (3, 6),
    "payments.transactionrecord": (5, 8),
    "reconciliation.dbs": (6, 9),
    "reconciliation.dcr": (6, 9),
    "reconciliation.deposit": (6, 9),
    "reconciliation.statementupload": (3, None),
}


def _labels() -> list[str]:
    return sorted(model._meta.label_lower for model in admin.site._registry)


def test_every_changelist_is_pinned():
    assert set(_labels()) == set(ROWS) == set(PINS)


def _queries(client: Client, url: str) -> tuple[int, int, int | None]:
    """``(status, queries, rows shown)`` of a changelist visit, after a warming visit (the
    session's content types, permissions and scope are cached from then on)."""
    client.get(url)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    context = response.context or {}
    if context.get("cl") is not None:
        shown = context["cl"].result_count
    elif isinstance(context.get("rows", context.get("items")), list):
        shown = len(context.get("rows", context.get("items")))  # a DynamoDB browser
    else:
        shown = None
    return response.status_code, len(captured.captured_queries), shown


@pytest.mark.parametrize("label", _labels())
def test_a_changelist_costs_the_same_queries_at_n_and_2n_rows(label, world):
    model = next(m for m in admin.site._registry if m._meta.label_lower == label)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    url += QUERY[label](world) if label in QUERY else ""
    superuser, branch_user = Client(), Client()
    superuser.force_login(UserFactory(is_superuser=True))
    branch_user.force_login(world.users["BM"])
    add, rows = ROWS[label], Rows(world)
    if add is None:
        LedgerSwitch.objects.get_or_create(pk=1)
    seen = []
    for first, last in ((0, N), (N, 2 * N)):
        for i in range(first, last):
            if add is not None:
                add(rows, i)
        seen.append((_queries(superuser, url), _queries(branch_user, url)))
    (su_n, br_n), (su_2n, br_2n) = seen
    measured = (su_n[1], br_n[1] if br_n[0] != 403 else None)
    assert PINS.get(label) == measured, f"PIN {label!r}: {measured}, at 2N {su_2n[1]}, {br_2n[1]}"
    status = 200 if add is not None else 302
    assert (su_n[0], su_2n[0]) == (status, status)
    assert su_2n[1] == su_n[1], f"{label}: {su_n[1]} queries at N rows, {su_2n[1]} at 2N"
    assert br_2n[0] == br_n[0] and br_2n[1] == br_n[1]
    if add is not None:  # the rows show: more at 2N, or a full page (50) already at N
        grew = su_n[2] > 0 and (su_2n[2] > su_n[2] or su_n[2] >= FULL_PAGE)
        assert grew, f"{label}: the rows added do not show ({su_n[2]}, {su_2n[2]})"
