"""The one maker-checker mechanism: requests, decisions, and the rule that a maker never
checks their own work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from audit.services import audit_record

from .exceptions import AlreadyDecided, MakerCannotCheck, NotAllowed
from .models import ApprovalRequest


def ensure_checker(*, actor: User, maker: User | int | None) -> None:
    """The rule for every workflow: whoever made or submitted a thing cannot approve it."""
    maker_id = maker if isinstance(maker, int) or maker is None else maker.pk
    if maker_id is not None and actor.pk == maker_id:
        raise MakerCannotCheck("You made this request; another person must approve it.")


@dataclass(frozen=True)
class KindHandler:
    maker_permission: str
    checker_permission: str
    apply: Callable[..., None]  # apply(request=..., actor=...) inside the decision's transaction


_handlers: dict[str, KindHandler] = {}


def register_kind(kind: str, handler: KindHandler) -> None:
    _handlers[kind] = handler


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
    if not actor.has_perm(handler.maker_permission):
        raise NotAllowed("You may not ask for this.")
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
    ensure_checker(actor=actor, maker=request.maker_id)
    handler = handler_for(request.kind)
    if not actor.has_perm(handler.checker_permission):
        raise NotAllowed("You may not approve this kind of request.")
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
