"""The one workflow mechanism: allowed moves as data next to the model, one function
that moves, one permission check, one status history.

A workflow model declares::

    class Dcr(models.Model):
        TRANSITIONS = {Status.DRAFT: {Status.SUBMITTED}, ...}   # the only allowed moves
        TRANSITION_SETS = {                                        # what a move also sets
            Status.SUBMITTED: {"submitted_by": ACTOR, "submitted_at": NOW},
            ANY: {"status_changed_at": NOW},                       # on every move
        }
        TRANSITION_REFUSED = "{obj} is {status}: it cannot be {to}."  # optional
        history = GenericRelation(StatusChange)                    # its StatusChange rows

``transition()`` checks the move, sets the status and the declared fields, saves, writes a
``StatusChange`` row and sends ``transitioned``, on which the audit app writes its outbox
row, all in the caller's transaction (the caller holds the row lock). The kernel imports
no app, so the audit event is written by the audit app's receiver, not here.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.dispatch import Signal
from django.utils import timezone

from core.errors import ApplicationError, Conflict

from .models import StatusChange

# Values of TRANSITION_SETS that are filled in at the move.
ACTOR = "<actor>"
NOW = "<now>"
REMARKS = "<remarks>"
ANY = "*"  # the TRANSITION_SETS key of what every move sets

DEFAULT_REFUSED = "{obj} is {status}: it cannot be {to}."

# Sent after every move, inside the caller's transaction: sender is the model class;
# instance, from_status, to_status, actor, remarks.
transitioned = Signal()


class InvalidTransition(Conflict):
    code = "invalid_transition"


class NotAllowed(ApplicationError):
    code = "not_allowed"
    status = 403


def require_permission(actor: Any, permission: str, message: str) -> None:
    """Refuse (``NotAllowed``, 403) unless ``actor`` holds ``permission``."""
    if not actor.has_perm(permission):
        raise NotAllowed(message)


def status_label(obj: models.Model, value: str) -> str:
    return str(dict(obj._meta.get_field("status").flatchoices).get(value, value)).lower()


def allowed(obj: models.Model, to: str) -> bool:
    return to in type(obj).TRANSITIONS.get(obj.status, set())


def transition(obj: models.Model, to: str, *, actor: Any, remarks: str = "") -> models.Model:
    """Move ``obj`` to ``to``: validate against ``TRANSITIONS`` (``InvalidTransition``),
    set the status and the fields ``TRANSITION_SETS`` declares, save, write the history row
    and (through ``transitioned``) the audit outbox row. The caller holds the row lock."""
    model = type(obj)
    before = obj.status
    if not allowed(obj, to):
        template = getattr(model, "TRANSITION_REFUSED", DEFAULT_REFUSED)
        raise InvalidTransition(
            template.format(obj=obj, status=status_label(obj, before), to=status_label(obj, to))
        )
    sets = getattr(model, "TRANSITION_SETS", {})
    now = timezone.now()
    fill = {ACTOR: actor, NOW: now, REMARKS: remarks}
    for name, value in {**sets.get(ANY, {}), **sets.get(to, {})}.items():
        setattr(obj, name, fill.get(value, value) if isinstance(value, str) else value)
    obj.status = to
    obj.save()
    StatusChange.objects.create(
        content_type=ContentType.objects.get_for_model(model),
        object_id=obj.pk,
        from_status=before,
        to_status=to,
        actor=actor,
        remarks=remarks,
    )
    transitioned.send(
        sender=model, instance=obj, from_status=before, to_status=to, actor=actor, remarks=remarks
    )
    return obj
