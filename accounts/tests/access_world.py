"""The world the access tests walk through: the suite's shared ``world`` (tests/world.py),
extended through the real services.

Branch ``own`` (home of the branch users), ``near`` (same area as ``own``) and ``far``
(another region), each with the shared world's customer and loan, a co-borrower, a bank
account, a mandate
presented and bounced (its bounce charge, its notification and the branch manager's
waiver request), a payment posted, a DCR, a DBS and a deposit; one of each head-office
record; one user per role (the branch users at ``own``, the area manager over ``own``'s
area, the others at head office). ``World.values`` names what URL templates need.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile

from api import scopes
from approvals.models import ApprovalRequest
from core.models import JobRun, OutboxMessage
from core.outbox import outbox_relay
from desk.services import CollectInput, desk_collect
from dynamo import registry
from imports.services import import_preview
from loans.models import CoBorrower, CustomerBankAccount, LoanCharge
from loans.services import loan_charge_waiver_request
from mandates import services as mandate_services
from mandates.models import (
    BankHoliday,
    ExecutionResult,
    PresentationBatch,
    ReturnCodePolicy,
    SandboxBounceRule,
    ScheduledPresentation,
)
from notifications.ddb_models import NotificationItem
from notifications.models import NotificationTemplate
from payments.models import LedgerSwitch, Posting
from payments.services import bulk_upload_preview, payments_post_due
from reconciliation import services as recon_services
from reconciliation.models import Dbs, Dcr
from tests.factories import (
    UserFactory,
    active_mandate,
    collection_account,
    days_ago,
    deposit,
    make_api_client,
    make_customer,
    pay,
)
from tests.stores import empty_table
from tests.world import WHERES, World, build_world

__all__ = ["World", "build_access_world", "empty_dynamodb"]


def _branch_objects(world: World, where: str, branch, people, account) -> None:
    loan = world.loans[where]
    co_borrower = CoBorrower.objects.create(
        loan=loan, customer=make_customer(branch=branch), relationship="SPOUSE"
    )
    bank_account = CustomerBankAccount.objects.create(
        customer=loan.customer,
        holder_name=loan.customer.name,
        bank_name="State Bank of India",
        account_number="123456789012",
        ifsc="SBIN0001234",
        is_primary=True,
    )
    mandate = active_mandate(loan, people)
    world.values[f"txn.{where}"] = pay(loan, "1500.00", day=days_ago(1))
    recon_services.dcr_build(branch_id=branch.pk, business_date=days_ago(1))
    receipt = desk_collect(
        collect=CollectInput(loan_number=loan.loan_number, amount=Decimal("900.00"), mode="CASH"),
        idempotency_key=f"access-world-{where}-{loan.loan_number}",
        duplicate_confirmed=False,
        actor=people["staff"],
    )
    bulk_upload = bulk_upload_preview(
        file_name=f"{where}.csv",
        content=f"loan_number,amount,mode,receipt_number,collector\n"
        f"{loan.loan_number},750.00,CASH,BULK-{where},Agent A\n".encode(),
        actor=people["staff"],
    )
    import_run = import_preview(
        kind="customers",
        file_name=f"{where}.csv",
        content=f"customer_number,branch_code,name,mobile,pan\nIMP-{where},{branch.code},"
        "Imported Customer,9876543210,ABCDE1234F\n".encode(),
        actor=people["manager"],
    )
    objects = {
        "accounts.branch": branch,
        "accounts.area": branch.area,
        "accounts.region": branch.area.region,
        "accounts.user": people["staff"],
        "loans.customer": loan.customer,
        "loans.loanaccount": loan,
        "loans.coborrower": co_borrower,
        "loans.customerbankaccount": bank_account,
        "loans.instalment": loan.instalments.order_by("due_date").first(),
        "mandates.mandate": mandate,
        "mandates.scheduledpresentation": ScheduledPresentation.objects.filter(mandate=mandate)
        .order_by("due_date")
        .first(),
        "reconciliation.dcr": Dcr.objects.get(branch=branch, business_date=days_ago(1)),
        "reconciliation.dbs": Dbs.objects.get(branch=branch, business_date=days_ago(1)),
        "reconciliation.deposit": deposit(branch, account, day=days_ago(1), actor=people["staff"]),
        "desk.deskreceipt": receipt,
        "payments.bulkupload": bulk_upload,
        "imports.importrun": import_run,
    }
    for label, obj in objects.items():
        if where == "near" and label in ("accounts.area", "accounts.region"):
            continue  # the same area and region as "own"
        world.objects.setdefault(label, {})[where] = obj


def _present_and_bounce(world: World, people_of: dict) -> None:
    """One presentation run for every branch's mandate, each bounced: a bounce charge,
    a notification, and the branch manager's waiver request."""
    own_first = (
        ScheduledPresentation.objects.filter(mandate__loan__branch=world.branches["own"])
        .order_by("presentation_date")
        .first()
    )
    run_date = own_first.presentation_date
    mandate_services.mandates_present_due(run_date=run_date)
    for where, branch in world.branches.items():
        row = ScheduledPresentation.objects.get(
            mandate__loan__branch=branch, presentation_date=run_date
        )
        mandate_services.execution_result_apply(
            partner_code=row.mandate.banking_partner.code,
            execution_id=mandate_services.execution_id_for(row, row.attempts),
            status="BOUNCED",
            return_code="04",
        )
        charge = LoanCharge.objects.get(loan__branch=branch)
        loan_charge_waiver_request(
            charge_id=charge.pk, reason="first bounce", actor=people_of[where]["manager"]
        )
        found = {
            "loans.loancharge": charge,
            "mandates.executionresult": ExecutionResult.objects.get(
                presentation__mandate__loan__branch=branch
            ),
            "payments.posting": Posting.objects.get(txn_id=world.values[f"txn.{where}"]),
            "approvals.approvalrequest": ApprovalRequest.objects.get(branch=branch),
        }
        for label, obj in found.items():
            world.objects.setdefault(label, {})[where] = obj


def build_access_world() -> World:
    world = build_world(username_prefix="walk")
    account = collection_account()
    product = world.loans["own"].product
    people_of = {}
    for where, branch in world.branches.items():
        if where == "own":
            people = {"staff": world.users["BS"], "manager": world.users["BM"]}
        else:
            people = {
                "staff": UserFactory(role="Branch Staff", home_branch=branch),
                "manager": UserFactory(role="Branch Manager", home_branch=branch),
            }
        people["ops"] = world.users["OP"]
        people_of[where] = people
        _branch_objects(world, where, branch, people, account)
    payments_post_due()
    _present_and_bounce(world, people_of)

    axes_fields = {
        "username": "someone",
        "ip_address": "10.0.0.1",
        "user_agent": "test",
        "http_accept": "*/*",
        "path_info": "/admin/login/",
    }
    singles = {
        "auth.group": Group.objects.get(name="Branch Staff"),
        "core.outboxmessage": OutboxMessage.objects.order_by("id").first(),
        "axes.accessattempt": AccessAttempt.objects.create(
            **axes_fields, get_data="", post_data="", failures_since_start=1
        ),
        "axes.accesslog": AccessLog.objects.create(**axes_fields),
        "axes.accessfailurelog": AccessFailureLog.objects.create(**axes_fields),
        "api.apiclient": make_api_client(scopes=[scopes.LOANS_READ], all_branches=True)[0],
        "notifications.notificationtemplate": NotificationTemplate.objects.first(),
        "loans.loanproduct": product,
        "loans.bankingpartner": account.partner,
        "loans.collectionaccount": account,
        "payments.ledgerswitch": LedgerSwitch.objects.get_or_create(pk=1)[0],
        "mandates.bankholiday": BankHoliday.objects.create(
            date=datetime.date(2027, 1, 26), name="Republic Day"
        ),
        "mandates.returncodepolicy": ReturnCodePolicy.objects.get(code="04"),
        "mandates.sandboxbouncerule": SandboxBounceRule.objects.create(
            account_number="999999999999", return_code="04"
        ),
        "mandates.presentationbatch": PresentationBatch.objects.first(),
        "reconciliation.statementupload": recon_services.statement_upload(
            collection_account_id=account.pk,
            file=SimpleUploadedFile(
                "statement.csv",
                f"date,narration,slip number,credit\n{days_ago(1)},CASH,S-1,500.00\n".encode(),
            ),
            actor=world.users["FI"],
        ),
        "core.jobrun": JobRun.objects.filter(name=mandate_services.PRESENTATION_JOB).first(),
    }
    for label, obj in singles.items():
        assert obj is not None, f"the world has no {label}"
        world.objects[label] = {"single": obj}

    world.values.update(
        loan_ct=ContentType.objects.get_for_model(world.objects["loans.loanaccount"]["own"]).pk,
        statement=singles["reconciliation.statementupload"].pk,
        partner=account.partner.code,
    )
    for where in WHERES:
        for name, label in {
            "loan": "loans.loanaccount",
            "customer": "loans.customer",
            "user": "accounts.user",
            "loancharge": "loans.loancharge",
            "posting": "payments.posting",
            "mandate": "mandates.mandate",
            "approval": "approvals.approvalrequest",
            "dcr": "reconciliation.dcr",
            "dbs": "reconciliation.dbs",
            "deposit": "reconciliation.deposit",
            "receipt": "desk.deskreceipt",
            "bulk": "payments.bulkupload",
            "importrun": "imports.importrun",
        }.items():
            world.values[f"{name}.{where}"] = world.objects[label][where].pk
        loan = world.objects["loans.loanaccount"][where]
        world.values[f"loan_number.{where}"] = loan.loan_number
    bounce = next(iter(NotificationItem.scan(limit=1)))
    world.values["notification.own"] = bounce.notification_id
    outbox_relay()  # the audit events are in DynamoDB, as in production
    return world


def empty_dynamodb() -> None:
    for model in registry.models():
        empty_table(model)
