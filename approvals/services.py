"""The one maker-checker mechanism: requests, decisions, and the four-eyes rule.

The rule, for every subject (a mandate, a DCR, a DBS, an approval request, anything
added later): whoever created it, or changed or submitted it since its last decision,
cannot decide it. Writes record their actor with :func:`subject_contribution_record`;
decisions go through :func:`subject_decide`; both run under the subject's row lock.

An approval request (reversal, waiver, mandate suspension or cancellation) is its own
subject: what is approved is its reason and payload, fixed when it is made, so its maker
is its contributor; a mandate, a DCR and a DBS are subjects through their own workflows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, models, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record
from core.workflow import NotAllowed, require_permission

from .exceptions import AlreadyDecided, MakerCannotCheck
from .models import ApprovalRequest, SubjectContribution


def subject_of(instance: models.Model) -> str:
    """The subject string of a model instance: ``app_label.model#pk`` (as audit entities)."""
    return f"{instance._meta.label_lower}#{instance.pk}"


def _current_round(subject: str) -> int:
    decided = SubjectContribution.objects.filter(
        subject=subject, kind=SubjectContribution.Kind.DECIDED
    ).aggregate(last=Max("round"))["last"]
    return 0 if decided is None else decided + 1


def subject_contribution_record(*, subject: str, actor: User | None, kind: str) -> None:
    """``actor`` created, changed or submitted ``subject``: they may not decide its open
    round. Call it in the transaction of the change, holding the subject's row lock (the
    decision takes the same lock), so that a decision sees every change it approves."""
    if actor is None or actor.pk is None:
        return  # the system (a daily job, a partner's result) is nobody's checker
    SubjectContribution.objects.bulk_create(
        [
            SubjectContribution(
                subject=subject, round=_current_round(subject), user_id=actor.pk, kind=kind
            )
        ],
        ignore_conflicts=True,  # the user already has a part in this round
    )


_REFUSALS = {
    SubjectContribution.Kind.CREATED: "You made {what}; another person must approve it.",
    SubjectContribution.Kind.CHANGED: (
        "You changed {what} since its last decision; another person must approve it."
    ),
    SubjectContribution.Kind.SUBMITTED: "You submitted {what}; another person must approve it.",
}


def decision_refusal(
    *, subject: str, user, makers: Iterable[int | None] = (), what: str = "this"
) -> str | None:
    """Why ``user`` may not decide ``subject`` now, or None. ``makers`` are the users the
    subject's own columns name as its maker (a mandate's creator and submitter, a DCR's
    submitter): refused even where no contribution was recorded (rows older than the
    contributions table)."""
    if user is None or user.pk is None:
        return None
    kind = (
        SubjectContribution.objects.blocking(subject, user.pk)
        .values_list("kind", flat=True)
        .first()
    )
    if kind is None and user.pk in set(makers):
        kind = SubjectContribution.Kind.CREATED
    return _REFUSALS[kind].format(what=what) if kind else None


def ensure_can_decide(
    *, subject: str, actor: User, makers: Iterable[int | None] = (), what: str = "this"
) -> None:
    """The four-eyes rule for every workflow: whoever created ``subject``, or created,
    changed or submitted it since its last decision, cannot decide it. The caller holds
    the subject's row lock."""
    refusal = decision_refusal(subject=subject, user=actor, makers=makers, what=what)
    if refusal:
        raise MakerCannotCheck(refusal)


def subject_decide(
    *, subject: str, actor: User, makers: Iterable[int | None] = (), what: str = "this"
) -> None:
    """The one place a decision (approve or return) is allowed and recorded: checks
    :func:`ensure_can_decide`, then closes the open round with a ``DECIDED`` row (the
    unique constraint refuses it for a contributor of the round, whatever the code
    above did) and carries the creator into the next round. The caller holds the
    subject's row lock; a refusal later in its transaction rolls this back too."""
    ensure_can_decide(subject=subject, actor=actor, makers=makers, what=what)
    current = _current_round(subject)
    try:
        with transaction.atomic():
            SubjectContribution.objects.create(
                subject=subject,
                round=current,
                user_id=actor.pk,
                kind=SubjectContribution.Kind.DECIDED,
            )
    except IntegrityError:
        raise MakerCannotCheck(
            _REFUSALS[SubjectContribution.Kind.CHANGED].format(what=what)
        ) from None
    creators = SubjectContribution.objects.filter(
        subject=subject, round=current, kind=SubjectContribution.Kind.CREATED
    ).values_list("user_id", flat=True)
    SubjectContribution.objects.bulk_create(
        [
            SubjectContribution(
                subject=subject,
                round=current + 1,
                user_id=user_id,
                kind=SubjectContribution.Kind.CREATED,
            )
            for user_id in creators
        ],
        ignore_conflicts=True,
    )


@dataclass(frozen=True)
class KindHandler:
    """What an approval request of one kind needs: who may ask, who may approve, and what
    approving does. Defined next to the owning app's services, registered by its
    ``AppConfig.ready()`` with :func:`register_kind`."""

    maker_permission: str
    checker_permission: str
    apply: Callable[..., None]  # apply(request=..., actor=...) inside the decision's transaction


_handlers: dict[str, KindHandler] = {}


def register_kind(kind: str, handler: KindHandler) -> None:
    """Register the handler of an approval-request kind, once, from the owning app's
    ``AppConfig.ready()``. Registering the same handler again changes nothing (``ready()``
    may run twice in a process); another handler for a registered kind is a programming
    error, refused at start-up rather than silently replacing the first."""
    registered = _handlers.get(kind)
    if registered is not None and registered != handler:
        raise ImproperlyConfigured(
            f"Approval kind {kind!r} is registered already, with another handler."
        )
    _handlers[kind] = handler


def registered_kinds() -> frozenset[str]:
    return frozenset(_handlers)


def handler_for(kind: str) -> KindHandler:
    return _handlers[kind]


@transaction.atomic
def approval_request_create(
    *,
    kind: str,
    branch_id: int,
    entity: str,
    entity_repr: str,
    reason: str,
    actor: User,
    payload: dict | None = None,
) -> ApprovalRequest:
    handler = handler_for(kind)
    require_permission(actor, handler.maker_permission, "You may not ask for this.")
    if not reason.strip():
        raise NotAllowed("Give a reason for the request.", code="reason_required", status=400)
    try:
        with transaction.atomic():
            request = ApprovalRequest.objects.create(
                kind=kind,
                branch_id=branch_id,
                entity=entity,
                entity_repr=entity_repr,
                reason=reason.strip(),
                payload=payload or {},
                maker=actor,
            )
            subject_contribution_record(
                subject=subject_of(request), actor=actor, kind=SubjectContribution.Kind.CREATED
            )
    except IntegrityError:
        raise AlreadyDecided(
            f"A {ApprovalRequest.Kind(kind).label.lower()} of {entity_repr} is already pending.",
            code="already_pending",
        ) from None
    return request


@transaction.atomic
def approval_decide(
    *, request_id: int, approve: bool, actor: User, remarks: str = ""
) -> ApprovalRequest:
    """Approve (and carry out) or return a request. Two checkers at once: one wins, the
    other is told who decided first."""
    request = ApprovalRequest.objects.select_for_update().get(pk=request_id)
    if request.status != ApprovalRequest.Status.PENDING:
        who = request.checker.get_username() if request.checker else "someone"
        raise AlreadyDecided(f"Already {request.get_status_display().lower()} by {who}.")
    subject_decide(
        subject=subject_of(request), actor=actor, makers=[request.maker_id], what="this request"
    )
    handler = handler_for(request.kind)
    require_permission(
        actor, handler.checker_permission, "You may not approve this kind of request."
    )
    if not approve and not remarks.strip():
        raise NotAllowed("Say why you return it.", code="remarks_required", status=400)
    request.status = ApprovalRequest.Status.APPROVED if approve else ApprovalRequest.Status.REJECTED
    request.checker = actor
    request.decided_at = timezone.now()
    request.remarks = remarks.strip()
    request.save(update_fields=["status", "checker", "decided_at", "remarks"])
    if approve:
        handler.apply(request=request, actor=actor)
    audit_record(
        instance_or_entity=request,
        action="transition",
        changes={"status": ["PENDING", request.status]},
        remarks=request.remarks,
        actor=actor,
    )
    return request
