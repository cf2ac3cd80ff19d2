"""The audit trail in the admin: an object's history from DynamoDB (a mixin for any
ModelAdmin) and the audit browser at /admin/audit/events/ (by entity, actor or day)."""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db.models import DateField, DateTimeField
from django.http import Http404, QueryDict
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.text import capfirst
from pynamodb.exceptions import PynamoDBException

from accounts.scoping import sees_everything
from core.admin.dynamo import DynamoAdmin, next_page_url
from core.templatetags.formats import day, ist

from .models import AuditMessage, Events
from .selectors import (
    AuditEvent,
    EventPage,
    audit_events_browse,
    audit_events_for_entity,
    audit_pending_for_entity,
    user_can_browse_audit,
)
from .tracking import entity_for, parse_entity

logger = logging.getLogger(__name__)

STORE_DOWN = "The audit store (DynamoDB) is unavailable; showing only changes not yet relayed."


HISTORY_TEMPLATE = "admin/audit/object_history.html"
HISTORY_PAGE_SIZE = 50


def object_history_view(model_admin, request, object_id, extra_context=None):
    """An object's "History" page: its audit events (who, when, what changed before/after,
    request id, IP) instead of Django's LogEntry list, including changes still waiting in
    the outbox (flagged "pending").

    The object is fetched with ``model_admin.get_object`` (so the admin's scoping applies):
    an object the user cannot see is a 404. Every scoped admin gets this page through the
    hook the audit app registers in its ``ready()``; other admins through the mixin below.
    """
    obj = model_admin.get_object(request, unquote(object_id))
    if obj is None:
        raise Http404(f"No {model_admin.opts.verbose_name} with id {object_id!r}")
    if not model_admin.has_view_or_change_permission(request, obj):
        raise PermissionDenied
    entity = entity_for(obj)
    page = entity_history(request, obj, limit=HISTORY_PAGE_SIZE, page_token=request.GET.get("page"))
    admin_site = model_admin.admin_site
    context = {
        **admin_site.each_context(request),
        "title": f"Change history: {obj}",
        "subtitle": None,
        "object": obj,
        "opts": model_admin.opts,
        "module_name": str(capfirst(model_admin.opts.verbose_name_plural)),
        "preserved_filters": model_admin.get_preserved_filters(request),
        "entity": entity,
        "rows": event_rows(page.events, model=model_admin.model),
        "next_url": _next_url(request, page.next_token),
        "browser_url": _browser_url(request, admin_site.name),
        **(extra_context or {}),
    }
    request.current_app = admin_site.name
    return TemplateResponse(request, HISTORY_TEMPLATE, context)


class AuditHistoryAdminMixin:
    """Put first in a ModelAdmin's bases: its "History" page is the object's audit trail
    (:func:`object_history_view`)."""

    def history_view(self, request, object_id, extra_context=None):
        return object_history_view(self, request, object_id, extra_context)


# --- The audit browser -----------------------------------------------------------------

_ENTITY = re.compile(r"^[a-z_][a-z0-9_]*\.[a-z0-9_]+#\S{1,100}$")


class AuditSearchForm(forms.Form):
    entity = forms.CharField(
        required=False,
        max_length=200,
        help_text="app_label.model_name#id, e.g. loans.loanaccount#12",
    )
    actor = forms.CharField(required=False, max_length=150, help_text="username or user id")
    day = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="the IST date",
    )

    def clean_entity(self) -> str:
        value = self.cleaned_data["entity"].strip()
        if not value:
            return ""
        label, sep, pk = value.partition("#")
        value = f"{label.lower()}{sep}{pk}"
        if not _ENTITY.match(value):
            raise forms.ValidationError("Write it as app_label.model_name#id.")
        return value

    def clean_actor(self) -> int | None:
        value = self.cleaned_data["actor"].strip()
        if not value:
            return None
        if value.isascii() and value.isdigit():
            return int(value)  # also the id of a user deleted since
        user_model = get_user_model()
        pk = (
            user_model._default_manager.filter(**{user_model.USERNAME_FIELD: value})
            .values_list("pk", flat=True)
            .first()
        )
        if pk is None:
            raise forms.ValidationError(f"No user named {value!r} (a user id also works).")
        return pk

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not any(
            cleaned.get(name) not in (None, "") for name in ("entity", "actor", "day")
        ):
            raise forms.ValidationError("Enter an entity, an actor or a day.")
        return cleaned


@admin.register(Events)
class AuditEventsAdmin(DynamoAdmin):
    """The audit browser. It reads DynamoDB through ``audit.selectors``; only users with
    ``audit.view_events`` may use it, and they see the events of what is in scope."""

    def can_view(self, request) -> bool:
        return user_can_browse_audit(request.user)

    def changelist_view(self, request, extra_context=None):
        self.require_view(request)
        form = AuditSearchForm(request.GET if _has_criteria(request.GET) else None)
        rows, next_url = None, None
        if form.is_bound and form.is_valid():
            try:
                page = audit_events_browse(
                    user=request.user,
                    entity=form.cleaned_data["entity"] or None,
                    actor_id=form.cleaned_data["actor"],
                    day=form.cleaned_data["day"],
                    limit=self.page_size,
                    page_token=request.GET.get("page"),
                )
            except PynamoDBException:
                logger.warning("audit browser: DynamoDB unavailable", exc_info=True)
                messages.error(request, "The audit store (DynamoDB) is unavailable.")
            else:
                rows = event_rows(page.events)
                next_url = _next_url(request, page.next_token)
        # The relay's backlog counts every branch's events: shown to who sees everything.
        pending = AuditMessage.objects.filter(done_at__isnull=True)
        if not sees_everything(request.user):
            pending = pending.none()
        context = {
            **self.admin_site.each_context(request),
            "title": "Audit events",
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "rows": rows,
            "next_url": next_url,
            "pending_count": pending.count(),
            "oldest_pending": pending.order_by("id").values_list("created_at", flat=True).first(),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/audit/events.html", context)


# --- Presentation ----------------------------------------------------------------------


def _has_criteria(params: QueryDict) -> bool:
    return any(params.get(name) for name in ("entity", "actor", "day"))


def _next_url(request, token: str | None) -> str | None:
    return next_page_url(request.GET, token, name="page")


def _browser_url(request, site_name: str) -> str | None:
    if not user_can_browse_audit(request.user):
        return None
    try:
        return reverse("admin:audit_events_changelist", current_app=site_name)
    except NoReverseMatch:
        return None


def entity_history(request, obj, *, limit: int, page_token: str | None = None) -> EventPage:
    """An object's audit trail, newest first. With DynamoDB unreachable, the changes still
    waiting in the outbox, and a warning for the user."""
    entity = entity_for(obj)
    try:
        return audit_events_for_entity(entity=entity, limit=limit, page_token=page_token)
    except PynamoDBException:
        logger.warning("audit history of %s: DynamoDB unavailable", entity, exc_info=True)
        messages.warning(request, STORE_DOWN)
        return EventPage(audit_pending_for_entity(entity=entity))


def history_rows(request, obj, *, limit: int = 50) -> list[dict[str, Any]]:
    """The first page of an object's audit trail as rows of audit's event template
    (``audit/_event.html``), for workflow pages beside the admin's history."""
    page = entity_history(request, obj, limit=limit)
    return event_rows(page.events, model=type(obj))


def event_rows(events: list[AuditEvent], *, model=None) -> list[dict[str, Any]]:
    """Events for the templates, naming people and related rows (a user's full name, a
    branch's name) instead of their database ids: one query per related model a page
    refers to."""
    names = _Names()
    models = [model or _model_of(event.entity) for event in events]
    for event, event_model in zip(events, models, strict=True):
        names.want(get_user_model(), event.actor_id)
        for name, before, after in event.change_rows:
            related = _related_model(event_model, name)
            if related is not None:
                names.want(related, before)
                names.want(related, after)
            for value in (before, after):
                if (entity := _entity_of(value)) is not None:
                    names.want(*entity)
    names.load()
    return [
        _row(event, model=event_model, in_history=model is not None, names=names)
        for event, event_model in zip(events, models, strict=True)
    ]


def _row(event: AuditEvent, *, model, in_history: bool, names: _Names) -> dict[str, Any]:
    """An event for the templates: changes in the model's field order, with field labels."""
    order = {f.name: i for i, f in enumerate(model._meta.get_fields())} if model else {}
    rows = sorted(event.change_rows, key=lambda change: (order.get(change[0], 999), change[0]))
    changes = []
    for name, before, after in rows:
        related = _related_model(model, name)
        if related is not None:
            before, after = names.shown(related, before), names.shown(related, after)
        changes.append(
            (
                _label(model, name),
                _shown_field(model, name, before, names),
                _shown_field(model, name, after, names),
            )
        )
    return {
        "event": event,
        "actor_name": names.shown(get_user_model(), event.actor_id) if event.actor_id else "",
        "changes": changes,
        "object_url": None if in_history else _object_url(event.entity),
    }


class _Names:
    """How screens name related rows, looked up in bulk: a person by their full name (else
    username), anything with a ``name`` by it (a branch), the rest by ``str()``."""

    def __init__(self) -> None:
        self.wanted: dict[type, set] = {}
        self.found: dict[tuple[type, Any], str] = {}

    def want(self, model, pk) -> None:
        if pk not in (None, ""):
            self.wanted.setdefault(model, set()).add(pk)

    def load(self) -> None:
        for model, pks in self.wanted.items():
            try:
                objects = model._default_manager.in_bulk(list(pks))
            except (ValueError, TypeError):  # a recorded value that is not a key
                continue
            for pk, obj in objects.items():
                self.found[(model, pk)] = _name_of(obj)

    def shown(self, model, pk) -> Any:
        if pk in (None, ""):
            return pk
        return self.found.get((model, pk), pk)


def _name_of(obj) -> str:
    if isinstance(obj, get_user_model()):
        return obj.get_full_name() or obj.get_username()
    name = getattr(obj, "name", None)
    return name if isinstance(name, str) and name else str(obj)


def _related_model(model, name: str):
    """The model a foreign key or one-to-one field ``name`` refers to, else None."""
    if model is None:
        return None
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        return None
    if field.many_to_one or field.one_to_one:
        return field.related_model
    return None


def _model_of(entity: str):
    try:
        return apps.get_model(parse_entity(entity)[0])
    except (ValueError, LookupError):
        return None


def _label(model, name: str) -> str:
    if model is None:
        return name
    try:
        return str(capfirst(model._meta.get_field(name).verbose_name))
    except FieldDoesNotExist:
        return name


def _entity_of(value: Any) -> tuple[type, str] | None:
    """``(model, pk)`` of a recorded reference to a row (``loans.customer#33``), else None."""
    if not isinstance(value, str) or not _ENTITY.match(value):
        return None
    model = _model_of(value)
    if model is None:
        return None
    try:
        return model, model._meta.pk.to_python(parse_entity(value)[1])
    except ValidationError:
        return None


_ENTITY = re.compile(r"^[a-z_]+\.[a-z_]+#\w+$")


def _shown_field(model, name: str, value: Any, names: _Names) -> str:
    """A recorded value of ``model.name`` as people read it: a choice by its label, moments
    in IST, days as dates, references to rows by their name."""
    if (entity := _entity_of(value)) is not None:
        return str(names.shown(*entity))
    field = None
    if model is not None:
        with contextlib.suppress(FieldDoesNotExist):
            field = model._meta.get_field(name)
    if field is not None and field.choices and value not in (None, ""):
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(value, str) and value:
        try:
            if isinstance(field, DateTimeField):
                return ist(value)
            if isinstance(field, DateField):
                return day(value)
        except ValueError:  # not the format the field records: shown as it was recorded
            pass
    return shown_value(value)


def shown_value(value: Any) -> str:
    """A recorded value as people read it (audit changes, approval payloads)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(shown_value(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {shown_value(v)}" for k, v in sorted(value.items()))
    if value == "":
        return '""'
    return str(value)


def _object_url(entity: str) -> str | None:
    try:
        label, pk = parse_entity(entity)
        app_label, model_name = label.split(".", 1)
        return reverse(f"admin:{app_label}_{model_name}_change", args=[pk])
    except (ValueError, NoReverseMatch):
        return None
