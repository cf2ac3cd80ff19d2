"""Deposits: their checks, the slip scan, record, change and delete (each a contribution
to the day's DBS)."""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.scoping import can_see_branch, scope_queryset
from approvals.models import SubjectContribution
from core.money import inr
from core.templatetags.formats import day as day_text
from core.workflow import require_permission
from loans.models import CollectionAccount

from ..exceptions import DepositRejected, NotAllowed, ReportNotFound
from ..models import FROZEN, Dbs, Deposit, Status
from ._common import _contributed
from .dbs import _dbs_locked, dbs_refresh

ADD_DEPOSIT = "reconciliation.add_deposit"


CHANGE_DEPOSIT = "reconciliation.change_deposit"


DELETE_DEPOSIT = "reconciliation.delete_deposit"


SLIP_SCAN_MAX_BYTES = 5 * 1024 * 1024


SLIP_SCAN_TYPES = {  # extension: the file's first bytes
    ".pdf": (b"%PDF-",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".png": (b"\x89PNG\r\n\x1a\n",),
}


def deposit_problems(
    *,
    branch_id: int | None,
    deposit_date: datetime.date | None,
    collection_account: CollectionAccount | None,
    slip_number: str,
    amount: Decimal | None,
    slip_scan=None,
    exclude_pk: int | None = None,
) -> dict[str, str]:
    """What is wrong with a deposit, by field (empty when nothing is). The admin's form
    shows these; ``deposit_record`` refuses with them."""
    problems: dict[str, str] = {}
    if amount is None or amount <= 0:
        problems["amount"] = "The amount must be more than zero."
    today = timezone.localdate()
    if deposit_date is not None and deposit_date > today:
        problems["deposit_date"] = "The deposit date cannot be in the future."
    if collection_account is not None and not collection_account.is_active:
        problems["collection_account"] = "This collection account is not active."
    slip_number = (slip_number or "").strip()
    if slip_number and branch_id:
        earlier = (
            Deposit.objects.filter(branch_id=branch_id, slip_number=slip_number)
            .exclude(pk=exclude_pk)
            .first()
        )
        if earlier is not None:
            problems["slip_number"] = (
                f"Slip number {slip_number} is already used (deposit of "
                f"{inr(earlier.amount)} on {day_text(earlier.deposit_date)})."
            )
    if branch_id and deposit_date is not None and "deposit_date" not in problems:
        status = (
            Dbs.objects.filter(branch_id=branch_id, business_date=deposit_date)
            .values_list("status", flat=True)
            .first()
        )
        if status in FROZEN:
            problems["deposit_date"] = (
                f"The DBS of {deposit_date:%d %b %Y} is {Status(status).label.lower()}: its "
                "deposits cannot change."
            )
    scan_problem = slip_scan_problem(slip_scan)
    if scan_problem:
        problems["slip_scan"] = scan_problem
    return problems


def slip_scan_problem(upload) -> str | None:
    if not upload:
        return None
    if getattr(upload, "_committed", False) and not hasattr(upload, "content_type"):
        return None  # the file already stored with the deposit
    if upload.size > SLIP_SCAN_MAX_BYTES:
        return f"The scan is {upload.size / 1024 / 1024:.1f} MB: at most 5 MB."
    name = upload.name or ""
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    magic = SLIP_SCAN_TYPES.get(suffix)
    if magic is None:
        return "The scan must be a PDF, JPEG or PNG file."
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if not any(head.startswith(m) for m in magic):
        return f"The file is not a real {suffix[1:].upper()} (its content does not match)."
    return None


def _deposit_refuse(problems: dict[str, str]) -> None:
    if problems:
        field_name = next(iter(problems))
        error = DepositRejected(" ".join(problems.values()), field=field_name)
        error.problems = problems
        raise error


@transaction.atomic
def deposit_record(
    *,
    actor,
    branch_id: int,
    deposit_date: datetime.date,
    collection_account_id: int,
    amount: Decimal,
    slip_number: str = "",
    slip_scan=None,
) -> Deposit:
    """Branch staff record a deposit of collected cash; the DBS of its date follows."""
    require_permission(actor, ADD_DEPOSIT, "You may not record deposits.")
    if not can_see_branch(actor, branch_id):
        raise NotAllowed("You may record deposits of your own branch only.")
    account = CollectionAccount.objects.filter(pk=collection_account_id).first()
    if account is None:
        raise DepositRejected("No such collection account.", field="collection_account")
    dbs = _dbs_locked(branch_id, deposit_date)  # a concurrent DBS submission waits for us
    slip_number = (slip_number or "").strip()
    _deposit_refuse(
        deposit_problems(
            branch_id=branch_id,
            deposit_date=deposit_date,
            collection_account=account,
            slip_number=slip_number,
            amount=amount,
            slip_scan=slip_scan,
        )
    )
    try:
        with transaction.atomic():
            deposit = Deposit.objects.create(
                branch_id=branch_id,
                deposit_date=deposit_date,
                collection_account=account,
                slip_number=slip_number,
                amount=amount,
                slip_scan=slip_scan or "",
                recorded_by=actor,
            )
    except IntegrityError:
        raise DepositRejected(
            f"Slip number {slip_number} is already used.", field="slip_number"
        ) from None
    _contributed(dbs, actor, SubjectContribution.Kind.CHANGED)
    dbs_refresh(branch_id=branch_id, business_date=deposit_date)
    _slip_twins_refresh(deposit)
    return deposit


def _slip_twins_refresh(deposit: Deposit) -> None:
    """Another branch's deposit into the same account with the same slip: its DBS gets
    the SLIP_USED_TWICE flag too."""
    if not deposit.slip_number:
        return
    twins = (
        Deposit.objects.filter(
            collection_account_id=deposit.collection_account_id, slip_number=deposit.slip_number
        )
        .exclude(pk=deposit.pk)
        .values_list("branch_id", "deposit_date")
        .distinct()
    )
    for branch_id, day in twins:
        dbs_refresh(branch_id=branch_id, business_date=day)


@transaction.atomic
def deposit_update(*, deposit_id: int, actor, **changes) -> Deposit:
    """Correct a deposit while the DBS of its date (old and new) is open."""
    require_permission(actor, CHANGE_DEPOSIT, "You may not change deposits.")
    deposit = (
        scope_queryset(Deposit.objects.select_for_update(), actor).filter(pk=deposit_id).first()
    )
    if deposit is None:
        raise ReportNotFound(f"No deposit {deposit_id} that you may see.")
    old_date = deposit.deposit_date
    old_dbs = _dbs_locked(deposit.branch_id, old_date)
    if Dbs.objects.filter(
        branch_id=deposit.branch_id, business_date=old_date, status__in=FROZEN
    ).exists():
        raise DepositRejected(
            f"The DBS of {old_date:%d %b %Y} is submitted: its deposits cannot change.",
            field="deposit_date",
        )
    for name in ("deposit_date", "collection_account_id", "slip_number", "amount", "slip_scan"):
        if name in changes:
            setattr(deposit, name, changes[name])
    deposit.slip_number = (deposit.slip_number or "").strip()
    new_dbs = _dbs_locked(deposit.branch_id, deposit.deposit_date)
    _deposit_refuse(
        deposit_problems(
            branch_id=deposit.branch_id,
            deposit_date=deposit.deposit_date,
            collection_account=CollectionAccount.objects.get(pk=deposit.collection_account_id),
            slip_number=deposit.slip_number,
            amount=deposit.amount,
            slip_scan=changes.get("slip_scan"),
            exclude_pk=deposit.pk,
        )
    )
    deposit.save()
    for dbs in {old_dbs.pk: old_dbs, new_dbs.pk: new_dbs}.values():
        _contributed(dbs, actor, SubjectContribution.Kind.CHANGED)
    for day in {old_date, deposit.deposit_date}:
        dbs_refresh(branch_id=deposit.branch_id, business_date=day)
    return deposit


@transaction.atomic
def deposit_delete(*, deposit_id: int, actor) -> None:
    require_permission(actor, DELETE_DEPOSIT, "You may not delete deposits.")
    deposit = (
        scope_queryset(Deposit.objects.select_for_update(), actor).filter(pk=deposit_id).first()
    )
    if deposit is None:
        raise ReportNotFound(f"No deposit {deposit_id} that you may see.")
    dbs = _dbs_locked(deposit.branch_id, deposit.deposit_date)
    if dbs.status in FROZEN:
        raise DepositRejected(
            f"The DBS of {deposit.deposit_date:%d %b %Y} is submitted: its deposits cannot change."
        )
    deposit.delete()
    _contributed(dbs, actor, SubjectContribution.Kind.CHANGED)
    dbs_refresh(branch_id=dbs.branch_id, business_date=dbs.business_date)
