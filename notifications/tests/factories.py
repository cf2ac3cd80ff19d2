"""Test state, built through the services."""

from __future__ import annotations

import datetime as dt
import importlib
from decimal import Decimal

import factory
from django.apps import apps
from django.contrib.auth.models import Permission
from django.test import TestCase
from django.utils import timezone

from accounts.models import User
from core.clock import iso
from notifications.ddb_models import NotificationItem
from notifications.models import Channel
from notifications.services import notification_queue

PASSWORD = "Notify@2026!"
MOBILE = "9876543210"
EMAIL = "ramesh.kumar@example.com"


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def permissions(self, create, extracted, **kwargs):
        for codename in extracted or ():
            self.user_permissions.add(Permission.objects.get(codename=codename))
        self.save()


def templates_seed() -> None:
    """The templates of the data migration (a transactional test's flush removes them)."""
    importlib.import_module("notifications.migrations.0002_seed_templates").seed(apps, None)


def receipt_context(**overrides) -> dict:
    return {
        "customer_name": "Ramesh Kumar",
        "amount": Decimal("123456.70"),
        "loan_number": "LN0001234",
        "paid_on": dt.date(2026, 1, 5),
        "mode": "UPI",
        "receipt_number": "RC-000451",
        **overrides,
    }


def queued(
    *,
    channel: str = Channel.SMS,
    template_code: str = "receipt",
    recipient: str = MOBILE,
    context: dict | None = None,
    **kwargs,
) -> NotificationItem:
    """A notification queued by the service, as after its caller's transaction committed."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        item = notification_queue(
            template_code=template_code,
            channel=channel,
            recipient=recipient,
            context=receipt_context() if context is None else context,
            **kwargs,
        )
    return reload(item)


def reload(item: NotificationItem) -> NotificationItem:
    return NotificationItem.get(item.notification_id, consistent_read=True)


def make_due(item: NotificationItem) -> NotificationItem:
    """Let a backoff (or a schedule) run out, as time would."""
    item.update(actions=[NotificationItem.scheduled_at.set(iso(timezone.now()))])
    return reload(item)


def make_expired(item: NotificationItem) -> NotificationItem:
    """Past its retention, yet still stored: DynamoDB's TTL deletes late."""
    item.update(actions=[NotificationItem.expires_at.set(timezone.now() - dt.timedelta(seconds=5))])
    return reload(item)
