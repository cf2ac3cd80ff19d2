"""The demo book's activity, through the real services, so that every screen shows
something on a fresh start: mandates in every state (the maker-checker workflow and the
approvals inbox included), a NACH presentation with successes and bounces (and their
charges), payments collected at the desk and in the field (ingestion, then posting),
the DCRs they make, deposits, and a bank statement matched to them.

Run once (``core.jobs``, key ``ACTIVITY_KEY``): a second bootstrap changes nothing. Each
step also skips what it finds done, so a run that failed half-way is completed by the
next one without doubling anything.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Q
from django.utils import timezone

from accounts.models import Branch, User
from approvals.services import approval_decide
from core.jobs import job_run
from desk.services import CollectInput, desk_collect
from loans.models import BankingPartner, CollectionAccount, CustomerBankAccount, LoanAccount
from mandates import services as mandates
from mandates.models import Mandate, SandboxBounceRule, ScheduledPresentation
from mandates.sandbox import sandbox_report
from payments.exceptions import DuplicateReceipt
from payments.services import PaymentInput, business_date_for, payment_ingest, payments_post_due
from reconciliation import services as recon
from reconciliation.models import Dcr, Deposit, StatementUpload

from .catalogue import BRANCH_CODES, BRANCHES, PARTNERS

ACTIVITY_JOB = "demo.activity"
ACTIVITY_KEY = "book"
LEASE = datetime.timedelta(minutes=30)
MANDATE_BRANCHES = 3  # the demo branches with the most loans get the mandates
PAYING_LOANS = 2  # per branch: paid in the field the day before, and as many at the desk today
SLIP_PREFIX = "DEMO"

S = Mandate.Status
# Per mandate branch: (the state wanted, the loan wanted, the sandbox's return code)
# "arrears": a loan 1-30 days past due, so that today's presentation debits the missed
# instalment; "current": a loan with its next instalment still to come.
MANDATE_PLAN = (
    (S.ACTIVE, "arrears", ""),
    (S.ACTIVE, "arrears", "04"),  # balance insufficient: retried, a bounce charge
    (S.ACTIVE, "arrears", ""),
    (S.ACTIVE, "arrears", "05"),
    (S.ACTIVE, "current", ""),
    (S.SUSPENDED, "current", ""),
    (S.CANCELLED, "current", ""),
    (S.APPROVED, "current", ""),
    (S.PENDING_APPROVAL, "current", ""),
    (S.DRAFT, "current", ""),
)


@dataclass
class ActivityResult:
    ran: bool = False
    mandates: dict[str, int] = field(default_factory=dict)
    presented: int = 0
    bounced: int = 0
    payments: int = 0
    posted: int = 0
    dcrs: int = 0
    deposits: int = 0
    statement_lines: int = 0


def demo_activity_present() -> bool:
    from core.models import JobRun

    return JobRun.objects.filter(
        name=ACTIVITY_JOB, key=ACTIVITY_KEY, state=JobRun.State.DONE
    ).exists()


def ensure_demo_activity(*, progress: Callable[[str], None] = lambda step: None) -> ActivityResult:
    """Add the demo activity unless it was added before; ``progress`` hears each step."""
    result = ActivityResult()
    with job_run(ACTIVITY_JOB, ACTIVITY_KEY, lease=LEASE) as run:
        if run is None:
            return result
        people = _People()
        branches = list(Branch.objects.filter(code__in=BRANCH_CODES).order_by("code"))
        if not branches:
            return result
        result.ran = True
        progress("mandates")
        result.mandates = _mandates(branches, people)
        progress("NACH presentation")
        result.presented, result.bounced = _present()
        progress("payments")
        result.payments = _payments(branches, people)
        result.posted = _post_all()
        progress("DCRs, deposits and a statement")
        result.dcrs = _dcrs(branches, people)
        result.deposits = _deposits(branches, people)
        result.statement_lines = _statement(people)
    return result


class _People:
    """The demo logins who do the work: a branch's staff and manager, head office."""

    def __init__(self) -> None:
        slugs = {b.code: b.slug for b in BRANCHES}
        self._users = {u.username: u for u in User.objects.filter(is_active=True)}
        self._slugs = slugs
        self.ops = self._users["ops1"]
        self.finance = self._users["finance1"]

    def staff(self, branch: Branch) -> User:
        return self._users[f"staff.{self._slugs[branch.code]}"]

    def manager(self, branch: Branch) -> User:
        return self._users[f"manager.{self._slugs[branch.code]}"]


# --- Mandates -----------------------------------------------------------------------------


def _mandates(branches: list[Branch], people: _People) -> dict[str, int]:
    if Mandate.objects.filter(loan__branch__in=branches).exists():
        return {}
    today = timezone.localdate()
    busiest = sorted(branches, key=lambda b: -b.loans.filter(status="ACTIVE").count())
    partners = list(
        BankingPartner.objects.filter(code__in=[p[0] for p in PARTNERS])
        .order_by("code")
        .values_list("id", flat=True)
    )
    counts: dict[str, int] = {}
    for branch in busiest[:MANDATE_BRANCHES]:
        candidates = {
            "arrears": list(_loans(branch).filter(dpd__gte=1, dpd__lte=30).order_by("id")[:20]),
            "current": list(
                _loans(branch).filter(dpd=0, next_due_date__isnull=False).order_by("id")[:20]
            ),
        }
        for index, (state, wanted, return_code) in enumerate(MANDATE_PLAN):
            pool = candidates[wanted] or candidates["current"] or candidates["arrears"]
            if not pool:
                break
            loan = pool.pop(0)
            for other in candidates.values():
                if loan in other:
                    other.remove(loan)
            mandate = _mandate_to(
                loan, state, people, partner_id=partners[index % len(partners)], today=today
            )
            if return_code:
                SandboxBounceRule.objects.get_or_create(
                    account_number=mandate.account_number, defaults={"return_code": return_code}
                )
            counts[state] = counts.get(state, 0) + 1
    return counts


def _loans(branch: Branch):
    return LoanAccount.objects.filter(
        branch=branch, status=LoanAccount.Status.ACTIVE, instalments__isnull=False
    ).distinct()


def _mandate_to(loan, state: str, people: _People, *, partner_id: int, today) -> Mandate:
    """A mandate on the loan moved to ``state`` the way staff move it."""
    branch = loan.branch
    staff, manager = people.staff(branch), people.manager(branch)
    account = CustomerBankAccount.objects.filter(customer=loan.customer, is_primary=True).first()
    mandate = mandates.mandate_create(
        actor=staff,
        loan=loan,
        payer=loan.customer,
        bank_name=account.bank_name,
        account_number=account.account_number,
        ifsc=account.ifsc,
        max_amount=(loan.emi_amount * 2).quantize(Decimal("1")),
        start_date=today - datetime.timedelta(days=35),
        end_date=loan.disbursed_on.replace(year=loan.disbursed_on.year + 6),
        banking_partner_id=partner_id,
    )
    if state == S.DRAFT:
        return mandate
    mandates.mandate_submit(mandate_id=mandate.pk, actor=staff)
    if state == S.PENDING_APPROVAL:
        return mandate
    mandates.mandate_approve(mandate_id=mandate.pk, actor=manager, remarks="Documents verified")
    if state == S.APPROVED:
        return mandate
    mandate = mandates.mandate_send_to_bank(mandate_id=mandate.pk, actor=people.ops)
    # the instalments missed in the last weeks are presented too, as a lender would
    mandates.mandate_schedule_generate(mandate=mandate, today=today - datetime.timedelta(days=30))
    if state in (S.SUSPENDED, S.CANCELLED):
        request = mandates.mandate_stop_request(
            mandate_id=mandate.pk,
            action="SUSPEND" if state == S.SUSPENDED else "CANCEL",
            reason="Customer asked to stop the debits"
            if state == S.CANCELLED
            else "Account under review at the customer's bank",
            actor=manager,
        )
        approval_decide(request_id=request.pk, approve=True, actor=people.ops, remarks="Agreed")
        mandate.refresh_from_db()
    return mandate


def _present() -> tuple[int, int]:
    """Today's presentation run, and the sandbox partner's answers to it at once."""
    today = timezone.localdate()
    mandates.mandates_present_due(run_date=today)
    presented = ScheduledPresentation.objects.filter(
        status=ScheduledPresentation.Status.PRESENTED,
        mandate__loan__branch__code__in=BRANCH_CODES,
    ).select_related("mandate__banking_partner")
    by_partner: dict[str, list[str]] = {}
    for row in presented:
        by_partner.setdefault(row.mandate.banking_partner.code, []).append(
            mandates.execution_id_for(row, row.attempts)
        )
    counts: dict[str, int] = {}
    for partner_code, execution_ids in by_partner.items():
        for outcome, n in sandbox_report(
            partner_code=partner_code, execution_ids=execution_ids
        ).items():
            counts[outcome] = counts.get(outcome, 0) + n
    bounced = ScheduledPresentation.objects.exclude(last_return_code="").count()
    return sum(len(ids) for ids in by_partner.values()), bounced


# --- Payments -----------------------------------------------------------------------------


def _payments(branches: list[Branch], people: _People) -> int:
    """Per branch: loans paid in the field the day before (their arrears, or an EMI), and
    at the desk today, through the one ingestion (and the desk's receipt series)."""
    recorded = 0
    for branch in branches:
        staff = people.staff(branch)
        today = business_date_for(branch, timezone.now())
        yesterday = today - datetime.timedelta(days=1)
        loans = list(
            _loans(branch)
            .filter(
                Q(dpd__gt=0, dpd__lte=90)
                | Q(dpd=0, next_due_date__lte=today + datetime.timedelta(days=10))
            )
            .exclude(mandates__isnull=False)
            .order_by("-dpd", "id")[: PAYING_LOANS * 2]
        )
        for n, loan in enumerate(loans):
            # most pay what is overdue (curing the loan), some only one EMI
            amount = loan.overdue_amount if loan.overdue_amount and n % 3 else loan.emi_amount
            amount = amount or loan.next_due_amount
            if amount <= 0:
                continue
            if n % 2:
                recorded += _field_payment(loan, amount, staff, yesterday, n)
            else:
                cash = n % 4 and amount < branch.cash_receipt_limit  # s.269ST: under 2 lakh
                receipt = desk_collect(
                    collect=CollectInput(
                        loan_number=loan.loan_number,
                        amount=amount,
                        mode="CASH" if cash else "UPI",
                        upi_reference="" if cash else f"4{loan.pk:011d}",
                    ),
                    idempotency_key=f"demo-desk-{loan.loan_number}",
                    duplicate_confirmed=True,
                    actor=staff,
                )
                recorded += receipt is not None
    return recorded


def _field_payment(loan, amount, staff, day, n) -> int:
    try:
        payment_ingest(
            payment=PaymentInput(
                loan_number=loan.loan_number,
                amount=amount,
                mode="UPI"
                if n % 5 == 0 or amount >= staff.home_branch.cash_receipt_limit
                else "CASH",
                business_date=day,
                receipt_number=f"FLD-{loan.loan_number}",
                collector=staff.get_full_name(),
            ),
            idempotency_key=f"demo-field-{loan.loan_number}",
            principal=staff,
            source="demo",
        )
    except DuplicateReceipt:  # recorded by an earlier, interrupted run
        return 0
    return 1


def _post_all() -> int:
    """Drain the posting queue (what the Celery worker does)."""
    posted = 0
    while True:
        outcomes = payments_post_due(limit=200)
        if not outcomes:
            return posted
        posted += outcomes.get("posted", 0)
        if set(outcomes) <= {"interrupted", "retry", "backoff"}:
            return posted


# --- DCRs, deposits, a statement ----------------------------------------------------------


def _dcrs(branches: list[Branch], people: _People) -> int:
    today = business_date_for(branches[0], timezone.now())
    yesterday = today - datetime.timedelta(days=1)
    recon.dcr_build_range(date_from=yesterday, date_to=today, branch_ids=[b.pk for b in branches])
    # in every area one branch's manager has submitted yesterday's DCR: it waits in the
    # area manager's inbox
    first_of_area: dict[int, Branch] = {}
    for branch in branches:
        first_of_area.setdefault(branch.area_id, branch)
    for branch in first_of_area.values():
        dcr = Dcr.objects.filter(branch=branch, business_date=yesterday).first()
        if dcr is not None and dcr.status == Dcr.Status.DRAFT:
            recon.dcr_submit(dcr_id=dcr.pk, actor=people.manager(branch))
    return Dcr.objects.filter(branch__in=branches, business_date__gte=yesterday).count()


def _deposits(branches: list[Branch], people: _People) -> int:
    account = CollectionAccount.objects.order_by("id").first()
    made = 0
    for branch in branches[:4]:
        today = business_date_for(branch, timezone.now())
        dcr = (  # the last closed date with cash collected
            Dcr.objects.filter(branch=branch, business_date__lt=today, cash_amount__gt=0)
            .order_by("-business_date")
            .first()
        )
        if dcr is None:
            continue
        slip = f"{SLIP_PREFIX}{branch.code}{dcr.business_date:%m%d}"
        if Deposit.objects.filter(branch=branch, slip_number=slip).exists():
            continue
        recon.deposit_record(
            actor=people.staff(branch),
            branch_id=branch.pk,
            deposit_date=dcr.business_date,
            collection_account_id=account.pk,
            amount=dcr.cash_amount,
            slip_number=slip,
        )
        made += 1
    return made


def _statement(people: _People) -> int:
    """The collection account's statement: a credit per demo deposit (matched by slip
    number), and one credit that no deposit explains."""
    deposits = list(Deposit.objects.filter(slip_number__startswith=SLIP_PREFIX).order_by("id"))
    if not deposits:
        return 0
    account_id = deposits[0].collection_account_id
    if StatementUpload.objects.filter(collection_account_id=account_id).exists():
        return 0
    lines = ["date,narration,reference,credit"]
    for deposit in deposits:
        lines.append(
            f"{deposit.deposit_date:%d-%m-%Y},CASH DEP {deposit.branch.code},"
            f"{deposit.slip_number},{deposit.amount}"
        )
    last = deposits[-1].deposit_date
    lines.append(f"{last:%d-%m-%Y},NEFT IN UNKNOWN REMITTER,UTR0000000001,2500.00")
    content = ("\n".join(lines) + "\n").encode()
    upload = recon.statement_upload(
        collection_account_id=account_id,
        file=SimpleUploadedFile("demo-statement.csv", content, content_type="text/csv"),
        actor=people.finance,
    )
    return upload.lines.count()
