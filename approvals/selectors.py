"""Reads of the approvals inbox: one list of what waits for a user, whatever the workflow.

The inbox is a registry of sources. A source is a function ``fn(user) -> list[InboxEntry]``
registered under a name with :func:`register_inbox_source` (optionally with a cheap
``count(user) -> int`` for the admin header); maker-checker requests are the first source,
and workflows with a status of their own (mandates, DCR, DBS) add theirs from their app::

    register_inbox_source("dcr", dcrs_waiting_for, count=dcrs_waiting_count)  # in ready()

Each source applies the one scoping function and its own checker permission, and never
lists what the user may not decide (:func:`without_undecidable`: they created it, or
changed or submitted it since its last decision).

A request's detail page may show more about its subject: an app registers a section
for a kind with :func:`register_request_detail` (payments shows a reversal's allocation).

"My requests" lists, beside the user's approval requests, what a checker returned to them
from workflows with a status of their own (DCR, DBS, mandates): each app registers a source
``fn(user) -> list[ReturnedEntry]`` with :func:`register_returned_source`.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db.models import CharField, Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Cast, Concat
from django.urls import reverse

from accounts.scoping import scope_queryset
from core.templatetags.formats import person

from .models import ApprovalRequest, SubjectContribution
from .services import handler_for

logger = logging.getLogger(__name__)

SOURCE_LIMIT = 200  # entries a source lists at most; the count tells the rest
HEADER_COUNT_SECONDS = 30  # the admin header's count may lag others' changes this long


@dataclass(frozen=True)
class InboxEntry:
    kind_label: str
    subject: str
    branch: str
    maker: str
    submitted_at: datetime.datetime
    url: str
    source: str = ""


@dataclass(frozen=True)
class InboxSource:
    name: str
    entries: Callable[[Any], list[InboxEntry]]
    count: Callable[[Any], int] | None = None


@dataclass(frozen=True)
class ReturnedEntry:
    """Something the user made or submitted that a checker returned, to be fixed."""

    kind_label: str
    subject: str
    branch: str
    returned_by: str
    returned_at: datetime.datetime
    remarks: str
    url: str  # where the user fixes it


_sources: dict[str, InboxSource] = {}
_returned_sources: dict[str, Callable[[Any], list[ReturnedEntry]]] = {}
_detail_sections: dict[str, Callable[..., dict[str, Any] | None]] = {}


def register_inbox_source(
    name: str, fn: Callable[[Any], list[InboxEntry]], *, count: Callable[[Any], int] | None = None
) -> None:
    """Add (or replace) a source of the inbox. Without ``count``, counting lists the entries."""
    _sources[name] = InboxSource(name, fn, count)


def inbox_sources() -> list[InboxSource]:
    return list(_sources.values())


def inbox_entries(user) -> list[InboxEntry]:
    """Everything waiting for ``user``, the longest waiting first."""
    if not _is_staff(user):
        return []
    entries = [entry for source in _sources.values() for entry in source.entries(user)]
    return sorted(entries, key=lambda e: e.submitted_at)


def inbox_count(user) -> int:
    if not _is_staff(user):
        return 0
    return sum(
        source.count(user) if source.count else len(source.entries(user))
        for source in _sources.values()
    )


def _header_count_key(user) -> str:
    return f"approvals:header-count:{user.pk}"


def inbox_count_for_header(user) -> int:
    """:func:`inbox_count` for the admin header, kept in the cache for
    ``HEADER_COUNT_SECONDS`` per user: every admin page shows it, and counting asks every
    source (four queries). The user's own changes clear it (``InboxCountMiddleware``);
    other people's show within ``HEADER_COUNT_SECONDS``. The inbox page counts afresh."""
    if not _is_staff(user):
        return 0
    key = _header_count_key(user)
    try:
        cached = cache.get(key)
    except Exception as exc:  # any cache failure: count in the database
        logger.warning("approvals header count: cache unavailable: %s", exc)
        return inbox_count(user)
    if cached is not None:
        return cached
    count = inbox_count(user)
    with contextlib.suppress(Exception):
        cache.set(key, count, HEADER_COUNT_SECONDS)
    return count


def inbox_count_forget(user) -> None:
    """The user changed something: their next page counts again."""
    try:
        cache.delete(_header_count_key(user))
    except Exception as exc:
        logger.warning("approvals header count: not cleared: %s", exc)


def register_returned_source(name: str, fn: Callable[[Any], list[ReturnedEntry]]) -> None:
    """Add (or replace) a source of "returned to me" for the My requests page."""
    _returned_sources[name] = fn


def returned_to(user) -> list[ReturnedEntry]:
    """What checkers returned to ``user`` and still waits for them, the latest first."""
    if not _is_staff(user):
        return []
    entries = [entry for fn in _returned_sources.values() for entry in fn(user)]
    return sorted(entries, key=lambda e: e.returned_at, reverse=True)


def register_request_detail(kind: str, fn: Callable[..., dict[str, Any] | None]) -> None:
    """``fn(*, approval, user)`` returns ``{"template": ..., **context}`` (or None) for the
    detail page of a request of ``kind``."""
    _detail_sections[str(kind)] = fn


def request_detail_section(*, approval: ApprovalRequest, user) -> dict[str, Any] | None:
    fn = _detail_sections.get(approval.kind)
    return fn(approval=approval, user=user) if fn else None


def without_undecidable(queryset: QuerySet, user) -> QuerySet:
    """``queryset`` without the subjects ``user`` may not decide under the four-eyes rule
    (the same rows ``approvals.services.ensure_can_decide`` refuses them for), in the
    same query."""
    subject = Concat(
        Value(f"{queryset.model._meta.label_lower}#"),
        Cast("pk", CharField()),
        output_field=CharField(),
    )
    blocking = SubjectContribution.objects.blocking(OuterRef("_subject"), user.pk)
    return queryset.alias(_subject=subject).exclude(Exists(blocking))


# --- Maker-checker requests -----------------------------------------------------------


def checkable_kinds(user) -> list[str]:
    """The kinds of request whose checker permission ``user`` has."""
    kinds = []
    for kind in ApprovalRequest.Kind.values:
        try:
            handler = handler_for(kind)
        except KeyError:  # a kind no app has registered yet
            continue
        if user.has_perm(handler.checker_permission):
            kinds.append(kind)
    return kinds


def approval_requests_waiting(*, user) -> QuerySet[ApprovalRequest]:
    """Pending requests in the user's scope, of kinds they may check, not made by them."""
    kinds = checkable_kinds(user)
    if not kinds:
        return ApprovalRequest.objects.none()
    queryset = ApprovalRequest.objects.filter(
        status=ApprovalRequest.Status.PENDING, kind__in=kinds
    ).exclude(maker_id=user.pk)
    return without_undecidable(scope_queryset(queryset, user), user)


def approval_requests_visible(*, user) -> QuerySet[ApprovalRequest]:
    return scope_queryset(ApprovalRequest.objects.all(), user)


def approval_requests_made_by(*, user) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(maker_id=user.pk).select_related("branch", "checker")


def approval_request_url(approval: ApprovalRequest) -> str:
    return reverse("approvals:detail", args=[approval.pk])


def approval_request_inbox_entries(user) -> list[InboxEntry]:
    waiting = approval_requests_waiting(user=user).select_related("branch", "maker")
    return [
        InboxEntry(
            kind_label=approval.get_kind_display(),
            subject=approval.entity_repr,
            branch=str(approval.branch),
            maker=person(approval.maker),
            submitted_at=approval.made_at,
            url=approval_request_url(approval),
            source="approval_requests",
        )
        for approval in waiting.order_by("made_at")[:SOURCE_LIMIT]
    ]


def approval_request_inbox_count(user) -> int:
    return approval_requests_waiting(user=user).count()


def _is_staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)
