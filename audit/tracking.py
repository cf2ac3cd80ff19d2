"""Change tracking: every create, update and delete of a tracked model writes an audit
outbox row in the same database transaction as the change.

Apps opt their models in from their own ``AppConfig.ready()``::

    from audit.tracking import track

    track(Customer, masked=("pan", "mobile"))
    track(CustomerBankAccount, masked=("account_number",))
    track(ApiClient, secret=("key_hash",), exclude=("last_used_at",))

- create: every tracked field as ``[None, after]``;
- update: only the fields whose value changed, ``[before, after]``; nothing changed, no event;
- delete: every tracked field as ``[before, None]``;
- many-to-many fields (a user's groups, a group's permissions): changes through the
  forward manager (``add``/``remove``/``set``/``clear``) as an update of that field.

``masked`` fields are recorded masked (``mask_value``; a mapping gives ``{field: keep}``);
``secret`` fields are never recorded, a change shows as ``["***", "***"]``.

What signals cannot see is not tracked: ``QuerySet.update()``, ``bulk_create()``,
``bulk_update()`` and raw SQL. Services that write that way, and workflow transitions,
call ``audit.services.audit_record`` themselves. Saves made outside a transaction
(autocommit) write their event right after the change, not atomically with it; services
are ``@transaction.atomic`` and the admin wraps its writes in a transaction.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, ValidationError
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.utils import timezone

from .masking import mask_secret, mask_value

MAX_TEXT = 2000  # longer values are cut, so that an event stays far below DynamoDB's 400 KB
MAX_M2M = 500  # names recorded per many-to-many side (changes compare every pk)
_BEFORE = "_audit_before"
_M2M_BEFORE = "_audit_m2m_before"
_NOTHING_TRACKED = object()


@dataclass(frozen=True)
class TrackSpec:
    model: type[models.Model]
    fields: tuple[models.Field, ...]
    m2m: tuple[models.ManyToManyField, ...]
    masked: Mapping[str, int] = field(default_factory=dict)
    secret: frozenset[str] = frozenset()

    def fields_for(self, update_fields: Iterable[str] | None) -> list[models.Field]:
        if update_fields is None:
            return list(self.fields)
        wanted = set(update_fields)
        return [f for f in self.fields if f.name in wanted or f.attname in wanted]

    def present(self, name: str, before: Any, after: Any) -> list:
        """``[before, after]`` as it may be stored: masked or hidden where the spec says."""
        if name in self.secret:
            return [mask_secret(before), mask_secret(after)]
        if name in self.masked:
            keep = self.masked[name]
            return [_mask_or_none(before, keep), _mask_or_none(after, keep)]
        return [before, after]

    def scrub(self, text: str, instance: models.Model) -> str:
        """Remove masked and secret values from a text (an object's ``str()``)."""
        for name in (*self.masked, *self.secret):
            raw = getattr(instance, _attname(self.model, name), None)
            if raw not in (None, "") and len(str(raw)) >= 4:
                replacement = mask_secret(raw) if name in self.secret else mask_value(raw)
                text = text.replace(str(raw), replacement or "")
        return text


_specs: dict[str, TrackSpec] = {}


def track(
    model: type[models.Model] | str,
    *,
    exclude: Iterable[str] = (),
    masked: Iterable[str] | Mapping[str, int] = (),
    secret: Iterable[str] = (),
) -> TrackSpec:
    """Audit every create, update and delete of ``model`` (a class or ``"app_label.Model"``).

    Call it from your ``AppConfig.ready()``. Calling it again for the same model replaces
    the spec; receivers are never connected twice. The primary key is the event's entity
    (``app_label.model_name#pk``), so it is not repeated in ``changes``.
    """
    if isinstance(model, str):
        model = apps.get_model(model)
    model = model._meta.concrete_model
    exclude, secret = set(exclude), frozenset(secret)
    masked = dict(masked) if isinstance(masked, Mapping) else dict.fromkeys(masked, 4)
    for name in (*exclude, *masked, *secret):
        try:
            model._meta.get_field(name)
        except FieldDoesNotExist:
            raise ImproperlyConfigured(
                f"track({model._meta.label}): no field named {name!r}"
            ) from None
    spec = TrackSpec(
        model=model,
        fields=tuple(
            f for f in model._meta.concrete_fields if not f.primary_key and f.name not in exclude
        ),
        m2m=tuple(f for f in model._meta.many_to_many if f.name not in exclude),
        masked=masked,
        secret=secret,
    )
    _specs[model._meta.label_lower] = spec
    # Proxies of the model send signals under their own class.
    senders = [model] + [
        m for m in apps.get_models() if m._meta.proxy and m._meta.concrete_model is model
    ]
    for sender in senders:
        uid = f"audit:{sender._meta.label_lower}"
        pre_save.connect(_pre_save, sender=sender, dispatch_uid=f"{uid}:pre_save")
        post_save.connect(_post_save, sender=sender, dispatch_uid=f"{uid}:post_save")
        post_delete.connect(_post_delete, sender=sender, dispatch_uid=f"{uid}:post_delete")
    for m2m_field in spec.m2m:
        m2m_changed.connect(
            _m2m_changed,
            sender=m2m_field.remote_field.through,
            dispatch_uid=f"audit:{model._meta.label_lower}.{m2m_field.name}:m2m",
        )
    return spec


def spec_for(model: type[models.Model]) -> TrackSpec | None:
    return _specs.get(model._meta.concrete_model._meta.label_lower)


def spec_for_label(label_lower: str) -> TrackSpec | None:
    return _specs.get(label_lower)


def tracked_models() -> list[type[models.Model]]:
    return [spec.model for spec in _specs.values()]


def entity_for(instance: models.Model) -> str:
    """``app_label.model_name#pk``, e.g. ``loans.loanaccount#12``."""
    return f"{instance._meta.concrete_model._meta.label_lower}#{instance.pk}"


def parse_entity(entity: str) -> tuple[str, str]:
    """``"loans.loanaccount#12"`` -> ``("loans.loanaccount", "12")``."""
    label, sep, pk = entity.partition("#")
    if not sep or "." not in label or not pk:
        raise ValueError(f"not an entity: {entity!r}")
    return label.lower(), pk


def json_safe(value: Any) -> Any:
    """A value as JSON without floats: Decimal and float -> str, dates -> ISO 8601 (datetimes
    in UTC), model instances -> their pk, long text cut to MAX_TEXT characters."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + "…"
    if isinstance(value, decimal.Decimal | float):
        return str(value)
    if isinstance(value, datetime.datetime):
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return str(value.total_seconds())
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, models.Model):
        return json_safe(value.pk)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return json_safe(str(value))


def field_value(model_field: models.Field, value: Any) -> Any:
    """A field's value, normalised as the database would return it, then made JSON-safe,
    so that ``Decimal("5")`` assigned in code and ``Decimal("5.00")`` read back compare equal."""
    if value is not None and not isinstance(value, models.Model):
        with contextlib.suppress(ValidationError, TypeError, ValueError):
            value = model_field.to_python(value)
    if (
        isinstance(model_field, models.DecimalField)
        and isinstance(value, decimal.Decimal)
        and value.is_finite()
        and model_field.decimal_places is not None
    ):
        value = value.quantize(decimal.Decimal(1).scaleb(-model_field.decimal_places))
    return json_safe(value)


def _attname(model: type[models.Model], name: str) -> str:
    return model._meta.get_field(name).attname


def _mask_or_none(value: Any, keep: int) -> Any:
    return None if value is None else mask_value(value, keep)


def creation_changes(spec: TrackSpec, instance: models.Model) -> dict[str, list]:
    """The changes of a create event: every tracked field as ``[None, after]``, masked."""
    after = _current_values(spec, instance, spec.fields)
    return {name: spec.present(name, None, value) for name, value in after.items()}


def update_changes(
    spec: TrackSpec,
    instance: models.Model,
    before: Mapping[str, Any],
    update_fields: Iterable[str] | None,
) -> dict[str, list]:
    """The changes of an update event: the tracked fields among ``update_fields`` (all when
    ``None``) whose value differs from ``before`` (by attname), masked."""
    deferred = instance.get_deferred_fields()
    changes = {}
    for f in spec.fields_for(update_fields):
        if f.attname in deferred:
            continue
        old = field_value(f, before.get(f.attname))
        new = field_value(f, getattr(instance, f.attname))
        if old != new:
            changes[f.name] = spec.present(f.name, old, new)
    return changes


def _current_values(spec: TrackSpec, instance: models.Model, fields) -> dict[str, Any]:
    return {f.name: field_value(f, getattr(instance, f.attname)) for f in fields}


def _write(spec: TrackSpec, instance: models.Model, action: str, changes: dict, using: str):
    from . import services

    services.audit_outbox_add(
        entity=entity_for(instance),
        entity_repr=spec.scrub(str(instance), instance),
        action=action,
        changes=changes,
        using=using,
    )


# --- Receivers -------------------------------------------------------------------------


def _pre_save(sender, instance, raw=False, using=None, update_fields=None, **kwargs) -> None:
    spec = spec_for(sender)
    if spec is None or raw:
        return
    fields = spec.fields_for(update_fields)
    if not fields:
        instance.__dict__[_BEFORE] = _NOTHING_TRACKED
        return
    pk_field = spec.model._meta.pk
    if instance.pk is None or (instance._state.adding and pk_field.has_default()):
        instance.__dict__[_BEFORE] = None  # an insert: nothing before
        return
    instance.__dict__[_BEFORE] = (
        spec.model._base_manager.using(using)
        .filter(pk=instance.pk)
        .values(*(f.attname for f in fields))
        .first()
    )


def _post_save(sender, instance, created, raw=False, using=None, update_fields=None, **kwargs):
    spec = spec_for(sender)
    if spec is None or raw:
        return
    before = instance.__dict__.pop(_BEFORE, None)
    if before is _NOTHING_TRACKED:
        return
    if created or before is None:
        changes = creation_changes(spec, instance)
        action = "create" if created else "update"
    else:
        changes = update_changes(spec, instance, before, update_fields)
        if not changes:
            return
        action = "update"
    _write(spec, instance, action, changes, using)


def _post_delete(sender, instance, using=None, origin=None, **kwargs) -> None:
    spec = spec_for(sender)
    if spec is None:
        return
    before = _current_values(spec, instance, spec.fields)
    changes = {name: spec.present(name, value, None) for name, value in before.items()}
    _write(spec, instance, "delete", changes, using)


def _m2m_field(spec: TrackSpec, through) -> models.ManyToManyField | None:
    return next((f for f in spec.m2m if f.remote_field.through is through), None)


def _m2m_members(instance: models.Model, m2m_field: models.ManyToManyField) -> tuple[list, list]:
    """The related objects' pks (to compare) and names (to record, at most MAX_M2M)."""
    related = getattr(instance, m2m_field.name).all().select_related().order_by("pk")
    objects = list(related)
    return [obj.pk for obj in objects], [str(obj) for obj in objects[:MAX_M2M]]


def _m2m_changed(sender, instance, action, reverse, model, pk_set, using=None, **kwargs):
    # Only the forward side (user.groups.add(...)); group.user_set.add(...) is not tracked.
    if reverse or (action in {"pre_add", "pre_remove"} and not pk_set):
        return
    spec = spec_for(type(instance))
    m2m_field = _m2m_field(spec, sender) if spec else None
    if m2m_field is None:
        return
    pending = instance.__dict__.setdefault(_M2M_BEFORE, {})
    if action.startswith("pre_"):
        pending[m2m_field.name] = _m2m_members(instance, m2m_field)
        return
    before = pending.pop(m2m_field.name, None)
    if before is None:
        return
    after = _m2m_members(instance, m2m_field)
    if before[0] != after[0]:
        changes = {m2m_field.name: spec.present(m2m_field.name, before[1], after[1])}
        _write(spec, instance, "update", changes, using)
