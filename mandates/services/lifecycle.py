"""The mandate lifecycle with maker-checker: create, edit, submit, approve or return, send
to the bank, activate or reject, suspend or cancel through approvals, resume, expire."""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, transaction

from accounts.models import User
from approvals.models import SubjectContribution
from approvals.services import (
    KindHandler,
    approval_request_create,
    subject_contribution_record,
    subject_decide,
    subject_of,
)
from core.errors import Conflict, NotFound
from core.workflow import InvalidTransition, allowed, require_permission, transition

from ..exceptions import MandateError
from ..models import Mandate
from ..partners import adapter_for
from ._common import _locked, _mandate_stop
from .schedule import mandate_schedule_generate

S = Mandate.Status
C = SubjectContribution.Kind


@transaction.atomic
def mandate_create(*, actor: User, **fields) -> Mandate:
    mandate = Mandate(created_by=actor, **fields)
    mandate.full_clean()
    mandate.save()
    mandate.transitions.create(from_status="", to_status=S.DRAFT, actor=actor, remarks="created")
    subject_contribution_record(subject=subject_of(mandate), actor=actor, kind=C.CREATED)
    return mandate


@transaction.atomic
def mandate_update(*, mandate_id: int, actor: User, **changes) -> Mandate:
    """Change a draft's details (``Mandate.DETAIL_FIELDS``). The editor becomes a
    contributor of the mandate's open round, so they cannot approve what they changed.
    Only the fields that differ are saved; the save is audited by the change tracking."""
    require_permission(actor, "mandates.change_mandate", "You may not change mandates.")
    unknown = set(changes) - set(Mandate.DETAIL_FIELDS)
    if unknown:
        raise MandateError(f"Not a mandate detail: {', '.join(sorted(unknown))}.")
    mandate = _locked(mandate_id)
    if mandate.status != S.DRAFT:
        raise InvalidTransition(
            f"Only a draft mandate can be changed; this one is "
            f"{mandate.get_status_display().lower()}.",
            code="not_draft",
        )
    changed = [name for name, value in changes.items() if getattr(mandate, name) != value]
    if not changed:
        return mandate
    for name in changed:
        setattr(mandate, name, changes[name])
    mandate.full_clean()
    mandate.save(update_fields=changed)
    subject_contribution_record(subject=subject_of(mandate), actor=actor, kind=C.CHANGED)
    return mandate


@transaction.atomic
def mandate_submit(*, mandate_id: int, actor: User, remarks: str = "") -> Mandate:
    require_permission(actor, "mandates.submit_mandate", "You may not submit mandates.")
    mandate = _locked(mandate_id)
    transition(mandate, S.PENDING_APPROVAL, actor=actor, remarks=remarks)
    subject_contribution_record(subject=subject_of(mandate), actor=actor, kind=C.SUBMITTED)
    return mandate


def _decision_lock(mandate_id: int, actor: User) -> Mandate:
    mandate = _locked(mandate_id)
    if mandate.status != S.PENDING_APPROVAL:
        who = mandate.checker.get_username() if mandate.checker else "someone else"
        raise Conflict(
            f"This mandate is {mandate.get_status_display().lower()} already (by {who}).",
            code="already_decided",
        )
    require_permission(actor, "mandates.approve_mandate", "You may not approve mandates.")
    subject_decide(
        subject=subject_of(mandate),
        actor=actor,
        makers=[mandate.maker_id, mandate.created_by_id],
        what="this mandate",
    )
    return mandate


@transaction.atomic
def mandate_approve(*, mandate_id: int, actor: User, remarks: str = "") -> Mandate:
    mandate = _decision_lock(mandate_id, actor)
    transition(mandate, S.APPROVED, actor=actor, remarks=remarks)
    return mandate


@transaction.atomic
def mandate_return(*, mandate_id: int, actor: User, remarks: str) -> Mandate:
    if not remarks.strip():
        raise MandateError("Say why you return it.", code="remarks_required")
    mandate = _decision_lock(mandate_id, actor)
    transition(mandate, S.DRAFT, actor=actor, remarks=remarks)
    return mandate


def mandate_send_to_bank(*, mandate_id: int, actor: User) -> Mandate:
    """APPROVED > SUBMITTED_TO_BANK, then the partner's answer: ACTIVE with a UMRN, or
    REJECTED. (The sandbox answers at once; a real partner's answer comes the same way.)"""
    require_permission(
        actor, "mandates.send_mandate_to_bank", "You may not send mandates to the bank."
    )
    with transaction.atomic():
        mandate = _locked(mandate_id)
        transition(mandate, S.SUBMITTED_TO_BANK, actor=actor)
    outcome = adapter_for(mandate.banking_partner.code).register_mandate(mandate)
    if outcome.accepted:
        return mandate_activate(mandate_id=mandate.pk, umrn=outcome.umrn, actor=actor)
    return mandate_registration_reject(mandate_id=mandate.pk, reason=outcome.reason, actor=actor)


@transaction.atomic
def mandate_activate(*, mandate_id: int, umrn: str, actor: User | None) -> Mandate:
    mandate = _locked(mandate_id)
    mandate.umrn = umrn
    try:
        with transaction.atomic():
            transition(mandate, S.ACTIVE, actor=actor, remarks=f"UMRN {umrn}")
    except IntegrityError:
        raise MandateError(
            f"Loan {mandate.loan.loan_number} already has an active mandate.",
            code="active_mandate_exists",
        ) from None
    mandate_schedule_generate(mandate=mandate)
    return mandate


@transaction.atomic
def mandate_registration_reject(*, mandate_id: int, reason: str, actor: User | None) -> Mandate:
    mandate = _locked(mandate_id)
    transition(mandate, S.REJECTED, actor=actor, remarks=reason)
    return mandate


STOP_KINDS = {"SUSPEND": "MANDATE_SUSPENSION", "CANCEL": "MANDATE_CANCELLATION"}


def mandate_stop_request(*, mandate_id: int, action: str, reason: str, actor: User):
    """A branch manager asks to suspend or cancel; operations approves (maker-checker)."""
    from accounts.scoping import scope_queryset

    mandate = (
        scope_queryset(Mandate.objects.select_related("loan"), actor).filter(pk=mandate_id).first()
    )
    if mandate is None:
        raise NotFound("No such mandate.", code="mandate_not_found")
    target = S.SUSPENDED if action == "SUSPEND" else S.CANCELLED
    if not allowed(mandate, target):
        raise InvalidTransition(
            f"A {mandate.get_status_display().lower()} mandate cannot be {target.label.lower()}."
        )
    return approval_request_create(
        kind=STOP_KINDS[action],
        branch_id=mandate.loan.branch_id,
        entity=f"mandates.mandate#{mandate.pk}",
        entity_repr=f"mandate {mandate.pk} on {mandate.loan.loan_number}",
        reason=reason,
        payload={"mandate_id": mandate.pk, "action": action},
        actor=actor,
    )


def _apply_stop(*, request, actor) -> None:
    mandate = _locked(request.payload["mandate_id"])
    to = S.SUSPENDED if request.payload["action"] == "SUSPEND" else S.CANCELLED
    _mandate_stop(mandate, to, actor=actor, remarks=request.reason)


@transaction.atomic
def mandate_resume(*, mandate_id: int, actor: User, remarks: str = "") -> Mandate:
    require_permission(actor, "mandates.approve_mandate_stop", "You may not resume mandates.")
    mandate = _locked(mandate_id)
    try:
        with transaction.atomic():
            transition(mandate, S.ACTIVE, actor=actor, remarks=remarks)
    except IntegrityError:
        raise MandateError(
            "The loan has another active mandate.", code="active_mandate_exists"
        ) from None
    mandate_schedule_generate(mandate=mandate)
    return mandate


@transaction.atomic
def mandate_import(*, actor: User, umrn: str, status: str, **fields) -> Mandate:
    """A mandate registered in another system, brought in as it stands there: ACTIVE (its
    presentations scheduled) or SUSPENDED, with its UMRN. It skips the maker-checker
    registration (the bank registered it already); its history says it was migrated."""
    if status not in (S.ACTIVE, S.SUSPENDED):
        raise MandateError(f"Only an active or suspended mandate is imported, not {status}.")
    mandate = Mandate(created_by=actor, umrn=umrn, status=status, **fields)
    active = Mandate.objects.filter(loan=mandate.loan, status=S.ACTIVE)
    if status == S.ACTIVE and active.exists():
        raise MandateError(
            f"Loan {mandate.loan.loan_number} already has an active mandate.",
            code="active_mandate_exists",
            field="loan",
        )
    mandate.full_clean()
    try:
        with transaction.atomic():
            mandate.save()
    except IntegrityError:
        raise MandateError(
            f"Loan {mandate.loan.loan_number} already has an active mandate.",
            code="active_mandate_exists",
        ) from None
    mandate.transitions.create(
        from_status="", to_status=status, actor=actor, remarks=f"migrated, UMRN {umrn}"
    )
    if status == S.ACTIVE:
        mandate_schedule_generate(mandate=mandate)
    return mandate


def mandates_expire(*, today: date) -> int:
    expired = 0
    for mandate_id in Mandate.objects.filter(status=S.ACTIVE, end_date__lt=today).values_list(
        "pk", flat=True
    ):
        with transaction.atomic():
            mandate = _locked(mandate_id)
            if mandate.status == S.ACTIVE:
                _mandate_stop(mandate, S.EXPIRED, actor=None, remarks="end date passed")
                expired += 1
    return expired


# The approval kinds of this app, registered by MandatesConfig.ready(): suspension and
# cancellation, one handler (the request's payload says which).
_STOP_HANDLER = KindHandler(
    maker_permission="mandates.request_mandate_stop",
    checker_permission="mandates.approve_mandate_stop",
    apply=_apply_stop,
)
APPROVAL_KINDS = dict.fromkeys(STOP_KINDS.values(), _STOP_HANDLER)
