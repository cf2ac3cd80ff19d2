"""The suite's one factories module: every test builds its state here, through the real
services where there is one (so tests exercise the real paths).

People: ``UserFactory`` is the one way to make a user, with the one ``PASSWORD``. ``role``
names the group (a role of ``accounts.roles``), the home (``home_branch``, ``home_area``
or ``home_region``; none for head office) sets the level::

    UserFactory(role="Branch Manager", home_branch=branch)
    UserFactory(role="Area Manager", home_area=area)
    UserFactory(role="Finance")
    UserFactory(is_superuser=True)

Sections: people and places, loans, mandates, payments, reconciliation, notifications,
API clients.
"""

from __future__ import annotations

import datetime
import importlib
import itertools
from decimal import Decimal

import factory
from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from accounts.models import Area, Branch, Region, User
from api import scopes as api_scopes
from api.models import ApiClient
from api.services import api_client_create
from core.clock import iso
from loans import services as loan_services
from loans.models import BankingPartner, CollectionAccount, LoanAccount, LoanCharge, LoanProduct
from mandates import services as mandate_services
from notifications.ddb_models import NotificationItem
from notifications.models import Channel
from notifications.services import notification_queue
from payments.services import PaymentInput, payment_ingest
from reconciliation import services as recon_services

PASSWORD = "Branch@2026!"

# --- People and places ----------------------------------------------------------------


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region

    code = factory.Sequence(lambda n: f"R{n:03d}")
    name = factory.Sequence(lambda n: f"Region {n}")


class AreaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Area

    code = factory.Sequence(lambda n: f"A{n:03d}")
    name = factory.Sequence(lambda n: f"Area {n}")
    region = factory.SubFactory(RegionFactory)


class BranchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Branch

    code = factory.Sequence(lambda n: f"B{n:04d}")
    name = factory.Sequence(lambda n: f"Branch {n}")
    area = factory.SubFactory(AreaFactory)
    state = "Maharashtra"


def _level(user) -> str:
    if user.home_branch is not None:
        return User.Level.BRANCH
    if user.home_area is not None:
        return User.Level.AREA
    if user.home_region is not None:
        return User.Level.REGION
    return User.Level.HEAD_OFFICE


class UserFactory(factory.django.DjangoModelFactory):
    """A member of staff, created through ``create_user`` (a hashed ``PASSWORD``) as the
    real paths do. ``role``: a group name; ``permissions``: extra codenames."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    employee_code = factory.Sequence(lambda n: f"E{n:05d}")
    is_staff = True
    home_branch = None
    home_area = None
    home_region = None
    level = factory.LazyAttribute(_level)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        password = kwargs.pop("password", PASSWORD)
        return model_class._default_manager.create_user(*args, password=password, **kwargs)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            self.groups.add(Group.objects.get(name=extracted))

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        for codename in extracted or ():
            self.user_permissions.add(Permission.objects.get(codename=codename))


def actors(branch) -> dict[str, User]:
    """The people of a maker-checker chain at ``branch``: staff, manager, head-office ops."""
    return {
        "staff": UserFactory(role="Branch Staff", home_branch=branch),
        "manager": UserFactory(role="Branch Manager", home_branch=branch),
        "ops": UserFactory(role="Operations"),
    }


# --- Loans ------------------------------------------------------------------------------


class LoanProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LoanProduct
        django_get_or_create = ["code"]

    code = "MSME"
    name = "Small business loan"
    interest_rate = Decimal("18.00")
    min_tenure_months = 6
    max_tenure_months = 60
    bounce_charge = Decimal("500.00")


class BankingPartnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BankingPartner
        django_get_or_create = ["code"]

    code = "sandbox"
    name = "Sandbox Bank"
    ifsc = "SBOX0000001"
    nach_utility_code = "SBOX00012345"


_customers = itertools.count()


def make_customer(*, branch=None, **overrides):
    n = next(_customers)
    fields = {
        "name": f"Customer {n}",
        "mobile": f"98{n:08d}",
        "pan": f"ABCDE{n % 10000:04d}F",
        "branch": branch or BranchFactory(),
    }
    fields.update(overrides)
    return loan_services.customer_create(actor=None, **fields)


def make_loan(*, customer=None, branch=None, product=None, **overrides):
    customer = customer or make_customer(branch=branch)
    terms = {
        "customer": customer,
        "branch": branch or customer.branch,
        "product": product or LoanProductFactory(),
        "sanctioned_amount": Decimal("100000.00"),
        "disbursed_amount": Decimal("100000.00"),
        "tenure_months": 12,
        "due_day": 5,
        "disbursed_on": datetime.date(2026, 1, 2),
    }
    terms.update(overrides)
    return loan_services.loan_account_create(actor=None, **terms)


def bounce_charge(loan, *, reference: str = ""):
    """A bounce charge of 500.00 plus 18% GST on the loan's first instalment, raised as a
    NACH bounce raises it (the loan row locked)."""
    with transaction.atomic():
        locked = LoanAccount.objects.select_for_update().get(pk=loan.pk)
        charge, _ = loan_services.loan_charge_raise(
            loan=locked,
            instalment=locked.instalments.order_by("due_date").first(),
            kind=LoanCharge.Kind.BOUNCE,
            amount=Decimal("500.00"),
            gst_rate=Decimal("18.00"),
            reference=reference or f"bounce-{loan.pk}",
            reason="NACH return 04",
        )
    return charge


def collection_account(partner: BankingPartner | None = None, number: str = "123456789012"):
    partner = partner or BankingPartnerFactory()
    account, _ = CollectionAccount.objects.get_or_create(
        partner=partner,
        account_number=number,
        defaults={"account_name": "Collections", "ifsc": "SBOX0000001"},
    )
    return account


# --- Mandates ---------------------------------------------------------------------------


def draft_mandate(loan, staff, *, account_number="123456789012", **overrides):
    fields = {
        "loan": loan,
        "payer": loan.customer,
        "bank_name": "State Bank of India",
        "account_number": account_number,
        "ifsc": "SBIN0001234",
        "max_amount": loan.emi_amount * 2,
        "start_date": datetime.date(2026, 1, 1),
        "end_date": datetime.date(2030, 12, 31),
        "banking_partner": BankingPartnerFactory(),
    }
    fields.update(overrides)
    return mandate_services.mandate_create(actor=staff, **fields)


def active_mandate(loan, people, **overrides):
    mandate = draft_mandate(loan, people["staff"], **overrides)
    mandate_services.mandate_submit(mandate_id=mandate.pk, actor=people["staff"])
    mandate_services.mandate_approve(mandate_id=mandate.pk, actor=people["manager"])
    return mandate_services.mandate_send_to_bank(mandate_id=mandate.pk, actor=people["ops"])


# --- Payments ---------------------------------------------------------------------------


def payment(loan, amount="1000.00", mode="CASH", business_date: datetime.date | None = None, **kw):
    return PaymentInput(
        loan_number=loan.loan_number,
        amount=Decimal(amount),
        mode=mode,
        business_date=business_date,
        # none by default: a receipt number is unique per branch (tests that need one say so)
        receipt_number=kw.pop("receipt_number", ""),
        collector=kw.pop("collector", "Field agent 7"),
        external_reference=kw.pop("external_reference", ""),
    )


_payment_keys = itertools.count()


def days_ago(n: int) -> datetime.date:
    return timezone.localdate() - datetime.timedelta(days=n)


def pay(
    loan,
    amount: str = "1000.00",
    *,
    mode: str = "CASH",
    collector: str = "Agent A",
    day: datetime.date | None = None,
    principal=None,
) -> str:
    """Ingest one payment with a receipt number; returns its txn_id."""
    n = next(_payment_keys)
    result = payment_ingest(
        payment=PaymentInput(
            loan_number=loan.loan_number,
            amount=Decimal(amount),
            mode=mode,
            business_date=day or days_ago(1),
            receipt_number=f"RCPT-{n}",
            collector=collector,
        ),
        idempotency_key=f"recon-test-{n}-{timezone.now().timestamp()}",
        principal=principal or UserFactory(is_superuser=True),
        source="test",
    )
    return result.body["txn_id"]


# --- Reconciliation ---------------------------------------------------------------------


def branch_with_loan(**branch_fields):
    branch = BranchFactory(**branch_fields)
    return branch, make_loan(branch=branch)


def deposit(branch, account, amount="500.00", slip="", day=None, actor=None):
    return recon_services.deposit_record(
        actor=actor or UserFactory(role="Branch Staff", home_branch=branch),
        branch_id=branch.pk,
        deposit_date=day or days_ago(1),
        collection_account_id=account.pk,
        amount=Decimal(amount),
        slip_number=slip,
    )


# --- Notifications ----------------------------------------------------------------------

MOBILE = "9876543210"
EMAIL = "ramesh.kumar@example.com"


def templates_seed() -> None:
    """The templates of the data migration (a transactional test's flush removes them)."""
    importlib.import_module("notifications.migrations.0002_seed_templates").seed(apps, None)


def receipt_context(**overrides) -> dict:
    return {
        "customer_name": "Ramesh Kumar",
        "amount": Decimal("123456.70"),
        "loan_number": "LN0001234",
        "paid_on": datetime.date(2026, 1, 5),
        "mode": "UPI",
        "receipt_number": "RC-000451",
        **overrides,
    }


def queued(
    *,
    channel: str = Channel.SMS,
    template_code: str = "receipt",
    recipient: str = MOBILE,
    context: dict | None = None,
    **kwargs,
) -> NotificationItem:
    """A notification queued by the service, as after its caller's transaction committed."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        item = notification_queue(
            template_code=template_code,
            channel=channel,
            recipient=recipient,
            context=receipt_context() if context is None else context,
            **kwargs,
        )
    return reload(item)


def reload(item: NotificationItem) -> NotificationItem:
    return NotificationItem.get(item.notification_id, consistent_read=True)


def make_due(item: NotificationItem) -> NotificationItem:
    """Let a backoff (or a schedule) run out, as time would."""
    item.update(actions=[NotificationItem.scheduled_at.set(iso(timezone.now()))])
    return reload(item)


def make_expired(item: NotificationItem) -> NotificationItem:
    """Past its retention, yet still stored: DynamoDB's TTL deletes late."""
    item.update(
        actions=[NotificationItem.expires_at.set(timezone.now() - datetime.timedelta(seconds=5))]
    )
    return reload(item)


# --- API clients ------------------------------------------------------------------------

_client_names = itertools.count(1)


def make_api_client(
    *,
    scopes=(api_scopes.LOANS_READ,),
    branches=(),
    all_branches=False,
    kind=ApiClient.Kind.INTEGRATION,
    banking_partner=None,
    name=None,
) -> tuple[ApiClient, str]:
    """``(client, raw_key)``, created through the service (so keys are real)."""
    return api_client_create(
        name=name or f"Integration {next(_client_names)}",
        kind=kind,
        scopes=scopes,
        allowed_branches=branches,
        all_branches=all_branches,
        banking_partner=banking_partner,
        actor=None,
    )


def key_header(raw_key: str) -> dict[str, str]:
    """Test-client kwargs that send ``Authorization: Api-Key <key>``."""
    return {"HTTP_AUTHORIZATION": f"Api-Key {raw_key}"}
