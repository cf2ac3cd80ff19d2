"""Reads by entity, actor and day: Queries only, newest first, paged by token."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from audit.ddb_models import AuditEventItem
from audit.models import AuditMessage
from audit.selectors import (
    audit_events_browse,
    audit_events_by_actor,
    audit_events_by_day,
    audit_events_for_entity,
)
from audit.services import audit_record
from core.outbox import outbox_relay
from tests.factories import BranchFactory, UserFactory

pytestmark = pytest.mark.django_db


def record(entity: str, *, actor=None, at: datetime.datetime | None = None) -> AuditMessage:
    row = audit_record(
        instance_or_entity=entity,
        action="transition",
        changes={"status": ["A", "B"]},
        actor=actor,
    )
    if at is not None:
        AuditMessage.objects.filter(pk=row.pk).update(created_at=at)
        row.refresh_from_db()
    return row


def all_pages(fetch, **kwargs) -> list[list[str]]:
    pages, token = [], None
    while True:
        page = fetch(page_token=token, **kwargs)
        pages.append([e.event_id for e in page.events])
        token = page.next_token
        if not token:
            return pages


def test_entity_events_newest_first_in_pages():
    base = timezone.now() - datetime.timedelta(hours=1)
    rows = [
        record("loans.loanaccount#1", at=base + datetime.timedelta(seconds=i)) for i in range(5)
    ]
    record("loans.loanaccount#2")
    outbox_relay()
    pages = all_pages(audit_events_for_entity, entity="loans.loanaccount#1", limit=2)
    assert pages == [
        [rows[4].event_id, rows[3].event_id],
        [rows[2].event_id, rows[1].event_id],
        [rows[0].event_id],
    ]


def test_entity_events_include_pending_rows_once_flagged():
    relayed = record("loans.loanaccount#3")
    outbox_relay()
    pending = record("loans.loanaccount#3")
    page = audit_events_for_entity(entity="loans.loanaccount#3")
    assert [(e.event_id, e.pending) for e in page.events] == [
        (pending.event_id, True),
        (relayed.event_id, False),
    ]


def test_actor_events_only_that_actors():
    maker, checker = UserFactory(), UserFactory()
    AuditMessage.objects.all().delete()
    mine = [record(f"loans.loanaccount#{i}", actor=maker) for i in range(3)]
    record("loans.loanaccount#9", actor=checker)
    record("loans.loanaccount#10")
    outbox_relay()
    pages = all_pages(audit_events_by_actor, actor_id=maker.pk, limit=2)
    assert [event_id for page in pages for event_id in page] == [r.event_id for r in reversed(mine)]


def test_day_events_merge_all_shards_newest_first_across_pages():
    day = datetime.date(2026, 3, 14)
    start = timezone.make_aware(datetime.datetime(2026, 3, 14, 0, 0, 5))
    rows = [
        record(f"loans.loanaccount#{i}", at=start + datetime.timedelta(minutes=37 * i))
        for i in range(30)
    ]
    record("loans.loanaccount#99", at=start - datetime.timedelta(minutes=1))  # the day before
    record("loans.loanaccount#98", at=start + datetime.timedelta(days=1))  # the day after
    outbox_relay()
    assert len({item.day for item in AuditEventItem.scan()}) > 2  # really spread over shards
    pages = all_pages(audit_events_by_day, day=day, limit=7)
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    assert [event_id for page in pages for event_id in page] == [r.event_id for r in reversed(rows)]


def test_a_day_is_the_ist_day():
    day = datetime.date(2026, 3, 14)
    ist = timezone.get_default_timezone()
    early = record("x.y#1", at=datetime.datetime(2026, 3, 14, 0, 10, tzinfo=ist))  # 18:40 UTC, 13th
    late = record("x.y#1", at=datetime.datetime(2026, 3, 14, 23, 50, tzinfo=ist))
    record("x.y#1", at=datetime.datetime(2026, 3, 15, 0, 0, tzinfo=ist))
    outbox_relay()
    by_day = audit_events_by_day(day=day)
    assert [e.event_id for e in by_day.events] == [late.event_id, early.event_id]
    by_entity = audit_events_for_entity(entity="x.y#1", day=day)
    assert [e.event_id for e in by_entity.events] == [late.event_id, early.event_id]


def test_a_tampered_or_foreign_token_starts_over():
    for i in range(3):
        record(f"loans.loanaccount#{i}")
    record("loans.loanaccount#0")
    outbox_relay()
    first = audit_events_for_entity(entity="loans.loanaccount#0", limit=1)
    assert first.next_token
    again = audit_events_for_entity(
        entity="loans.loanaccount#1", limit=1, page_token=first.next_token
    )
    assert [e.entity for e in again.events] == ["loans.loanaccount#1"]
    tampered = audit_events_for_entity(
        entity="loans.loanaccount#0", limit=1, page_token=first.next_token[:-2] + "xx"
    )
    assert tampered.events == first.events


def test_expired_events_are_never_served():
    row = record("loans.loanaccount#5")
    outbox_relay()
    (item,) = AuditEventItem.query("loans.loanaccount#5")
    item.update(actions=[AuditEventItem.expires_at.set(timezone.now() - datetime.timedelta(1))])
    assert audit_events_for_entity(entity="loans.loanaccount#5").events == []
    assert row.event_id not in [
        e.event_id for e in audit_events_by_day(day=timezone.localdate()).events
    ]


def test_browse_needs_the_permission():
    clerk = UserFactory()
    with pytest.raises(PermissionDenied):
        audit_events_browse(user=clerk, entity="loans.loanaccount#1")


def test_browse_shows_a_scoped_user_only_what_is_in_scope(django_user_model):
    from django.contrib.auth.models import Permission

    mine, other = BranchFactory(), BranchFactory()
    manager = UserFactory(level="BRANCH", home_branch=mine)
    manager.user_permissions.add(Permission.objects.get(codename="view_events"))
    manager = django_user_model.objects.get(pk=manager.pk)  # fresh permission cache
    mine.name, other.name = "Renamed mine", "Renamed other"
    mine.save()
    other.save()
    outbox_relay()
    page = audit_events_browse(user=manager, day=timezone.localdate())
    entities = {e.entity for e in page.events}
    assert f"accounts.branch#{mine.pk}" in entities
    assert f"accounts.branch#{other.pk}" not in entities
