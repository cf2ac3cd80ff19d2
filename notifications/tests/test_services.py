import contextlib
import datetime as dt
import threading

import pytest
from django.core import mail
from django.db import transaction
from django.utils import timezone

from core.clock import iso
from notifications.channels import development_outbox
from notifications.ddb_models import NotificationItem
from notifications.exceptions import (
    InvalidRecipient,
    NotificationNotFound,
    NotificationNotRetryable,
    TemplateNotFound,
)
from notifications.models import Channel, NotificationStatus, NotificationTemplate
from notifications.selectors import notification_get, notification_page
from notifications.services import (
    notification_queue,
    notification_retry,
    notification_send,
    notifications_dispatch_due,
    welcome_notification_queue,
)
from tests.factories import (
    EMAIL,
    MOBILE,
    UserFactory,
    make_due,
    make_expired,
    queued,
    receipt_context,
    reload,
    templates_seed,
)

from .providers import FlakyProvider

Status = NotificationStatus
pytestmark = pytest.mark.django_db


@pytest.fixture
def flaky(settings):
    settings.NOTIFICATIONS_SMS_PROVIDER = "notifications.tests.providers.FlakyProvider"
    FlakyProvider.reset()
    yield FlakyProvider
    FlakyProvider.reset()


def _outbox_for(item):
    return [e for e in development_outbox() if e["notification_id"] == item.notification_id]


def test_email_goes_through_djangos_email_backend():
    item = queued(
        channel=Channel.EMAIL,
        template_code="receipt",
        recipient="Ramesh.Kumar@Example.COM",
        entity="loans.loanaccount#7",
    )
    assert item.status == Status.QUEUED
    assert item.recipient_masked == "R***@example.com"

    sent = notification_send(notification_id=item.notification_id)

    assert sent.status == Status.SENT
    (message,) = mail.outbox
    assert message.to == ["Ramesh.Kumar@example.com"]
    assert message.subject == "Payment received: receipt RC-000451 for loan LN0001234"
    assert "Amount:         ₹1,23,456.70" in message.body
    stored = reload(item)
    assert stored.status == Status.SENT
    assert stored.provider_message_id == message.extra_headers["Message-ID"]
    assert stored.sent_at is not None and stored.lease_until is None
    assert (stored.attempts, stored.entity) == (1, "loans.loanaccount#7")
    assert stored.status_channel == "SENT#EMAIL"


def test_sms_is_recorded_in_the_development_outbox():
    item = queued(channel=Channel.SMS, recipient="+91 98765-43210")
    assert (item.recipient, item.recipient_masked) == (MOBILE, "XXXXXX3210")

    notification_send(notification_id=item.notification_id)

    (entry,) = _outbox_for(item)
    assert entry["channel"] == "SMS"
    assert entry["recipient"] == MOBILE
    assert "₹1,23,456.70" in entry["body"]
    stored = reload(item)
    assert stored.status == Status.SENT
    assert stored.provider_message_id == entry["provider_message_id"]
    assert mail.outbox == []


def test_push_goes_through_the_push_provider():
    NotificationTemplate.objects.create(
        code="receipt", channel=Channel.PUSH, body="Received {{ amount|inr }} for {{ loan_number }}"
    )
    item = queued(channel=Channel.PUSH, recipient="device-token-abcdef123456")
    assert item.recipient_masked == "****3456"

    notification_send(notification_id=item.notification_id)

    (entry,) = _outbox_for(item)
    assert entry["channel"] == "PUSH"
    assert entry["body"] == "Received ₹1,23,456.70 for LN0001234"
    assert reload(item).status == Status.SENT


def test_notification_of_a_rolled_back_transaction_is_never_sent(
    django_capture_on_commit_callbacks,
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        item = notification_queue(
            template_code="receipt",
            channel=Channel.SMS,
            recipient=MOBILE,
            context=receipt_context(),
        )
        raise RuntimeError("the payment failed to post")
    assert callbacks == []
    stored = reload(item)
    assert stored.status == Status.PENDING
    assert stored.expires_at < timezone.now() + dt.timedelta(days=1, seconds=5)  # soon gone
    assert notification_send(notification_id=item.notification_id) is None
    assert notifications_dispatch_due() == {}
    assert development_outbox() == []


def test_notification_waits_for_the_commit_of_its_transaction(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        item = notification_queue(
            template_code="receipt",
            channel=Channel.SMS,
            recipient=MOBILE,
            context=receipt_context(),
        )
    assert reload(item).status == Status.PENDING
    assert notification_send(notification_id=item.notification_id) is None
    for callback in callbacks:
        callback()
    assert reload(item).status == Status.QUEUED


def test_scheduled_notification_is_not_sent_before_it_is_due():
    later = timezone.now() + dt.timedelta(hours=2)
    item = queued(scheduled_at=later)
    assert item.scheduled_at == iso(later)

    assert notification_send(notification_id=item.notification_id) is None
    assert notifications_dispatch_due() == {}
    assert reload(item).status == Status.QUEUED

    make_due(item)
    assert notifications_dispatch_due() == {Status.SENT: 1}
    assert len(_outbox_for(item)) == 1


def test_transient_provider_failure_backs_off_then_sends(flaky):
    flaky.reset(failures=2)
    item = queued()

    before = timezone.now()
    first = notification_send(notification_id=item.notification_id)
    assert first.status == Status.QUEUED
    assert (first.attempts, first.last_error) == (1, "provider timed out")
    assert first.status_channel == "QUEUED#SMS"
    assert first.lease_until is None
    assert (
        before + dt.timedelta(seconds=29)
        < first.scheduled_for
        < timezone.now() + dt.timedelta(seconds=31)
    )
    # not due yet: neither a redelivered task nor the dispatcher sends it early
    assert notification_send(notification_id=item.notification_id) is None
    assert notifications_dispatch_due() == {}

    make_due(item)
    before = timezone.now()
    second = notification_send(notification_id=item.notification_id)
    assert (second.status, second.attempts) == (Status.QUEUED, 2)
    assert second.scheduled_for > before + dt.timedelta(seconds=59)  # the backoff doubled

    make_due(item)
    assert notifications_dispatch_due() == {Status.SENT: 1}
    stored = reload(item)
    assert (stored.status, stored.attempts, stored.provider_message_id) == (
        Status.SENT,
        3,
        "flaky-1",
    )
    assert flaky.accepted == [item.notification_id]
    assert flaky.calls == 3


def test_gives_up_after_max_attempts_and_staff_can_retry(flaky, settings):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    flaky.reset(failures=100)
    item = queued()
    for _ in range(3):
        notification_send(notification_id=item.notification_id)
        item = make_due(item)
    assert (item.status, item.attempts) == (Status.FAILED, 3)
    assert item.last_error == "provider timed out"
    assert item.status_channel == "FAILED#SMS"
    assert notification_send(notification_id=item.notification_id) is None
    assert notifications_dispatch_due() == {}
    assert flaky.calls == 3

    flaky.reset()
    retried = notification_retry(notification_id=item.notification_id)
    assert (retried.status, retried.attempts) == (Status.QUEUED, 0)
    assert notification_send(notification_id=item.notification_id).status == Status.SENT
    assert flaky.accepted == [item.notification_id]


def test_permanent_refusal_fails_at_once(settings):
    settings.NOTIFICATIONS_SMS_PROVIDER = "notifications.tests.providers.RejectingProvider"
    item = queued()
    failed = notification_send(notification_id=item.notification_id)
    assert (failed.status, failed.attempts) == (Status.FAILED, 1)
    assert "do-not-disturb" in failed.last_error


def test_only_a_failed_notification_can_be_retried():
    item = queued()
    with pytest.raises(NotificationNotRetryable):
        notification_retry(notification_id=item.notification_id)
    with pytest.raises(NotificationNotFound):
        notification_retry(notification_id="01J0000000000000000000000Z")


def test_dispatch_sends_due_notifications_only():
    due = queued()
    due_email = queued(channel=Channel.EMAIL, recipient=EMAIL)
    later = queued(scheduled_at=timezone.now() + dt.timedelta(minutes=10))
    expired = make_expired(queued())
    already_sent = queued()
    notification_send(notification_id=already_sent.notification_id)

    assert notifications_dispatch_due() == {Status.SENT: 2}

    assert reload(due).status == Status.SENT
    assert reload(due_email).status == Status.SENT
    assert reload(later).status == Status.QUEUED
    # expired: never sent, left for the TTL (DynamoDB Local may delete it meanwhile, as AWS would)
    with contextlib.suppress(NotificationItem.DoesNotExist):
        assert reload(expired).status == Status.QUEUED
    assert {e["notification_id"] for e in development_outbox()} == {
        due.notification_id,
        already_sent.notification_id,
    }
    assert len(mail.outbox) == 1
    assert notifications_dispatch_due() == {}


def _abandon(item: NotificationItem, *, attempts: int) -> None:
    """As if a worker had claimed it and died while sending."""
    item.update(
        actions=[
            *NotificationItem.status_set(item.notification_id, Status.SENDING, item.channel),
            NotificationItem.lease_until.set(timezone.now() - dt.timedelta(seconds=1)),
            NotificationItem.attempts.set(attempts),
        ]
    )


def test_dispatch_takes_over_from_a_lost_worker():
    item = queued()
    _abandon(item, attempts=1)
    assert notifications_dispatch_due() == {Status.SENT: 1}
    assert (reload(item).status, reload(item).attempts) == (Status.SENT, 2)


def test_a_live_lease_is_respected():
    item = queued()
    _abandon(item, attempts=1)
    item.update(
        actions=[NotificationItem.lease_until.set(timezone.now() + dt.timedelta(seconds=60))]
    )
    assert notification_send(notification_id=item.notification_id) is None
    assert notifications_dispatch_due() == {}
    assert reload(item).status == Status.SENDING


def test_lost_worker_on_the_last_attempt_fails_the_notification(settings):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    item = queued()
    _abandon(item, attempts=2)
    assert notifications_dispatch_due() == {Status.FAILED: 1}
    stored = reload(item)
    assert stored.status == Status.FAILED
    assert "worker lost" in stored.last_error
    assert development_outbox() == []


def test_expired_notifications_are_never_served():
    item = make_expired(queued())
    failed = make_expired(queued())
    failed.update(actions=NotificationItem.status_set(failed.notification_id, Status.FAILED, "SMS"))
    assert NotificationItem.count() == 2  # still stored, as under DynamoDB's lazy TTL
    assert notification_get(notification_id=item.notification_id) is None
    assert notification_page(status=Status.QUEUED, channel=Channel.SMS).items == []
    assert notification_page(status=Status.FAILED, channel=Channel.SMS).items == []
    assert notification_send(notification_id=item.notification_id) is None
    assert notifications_dispatch_due() == {}
    with pytest.raises(NotificationNotFound):
        notification_retry(notification_id=failed.notification_id)
    assert development_outbox() == []


def test_retention_is_the_ttl(settings):
    settings.NOTIFICATIONS_RETENTION_DAYS = 90
    item = queued()
    expected = item.created_at + dt.timedelta(days=90)
    assert abs((item.expires_at - expected).total_seconds()) < 2


def test_switched_off_template_queues_nothing():
    NotificationTemplate.objects.filter(code="receipt", channel=Channel.SMS).update(is_active=False)
    assert (
        notification_queue(
            template_code="receipt",
            channel=Channel.SMS,
            recipient=MOBILE,
            context=receipt_context(),
        )
        is None
    )
    assert NotificationItem.count() == 0


@pytest.mark.parametrize(
    ("channel", "recipient"),
    [(Channel.SMS, "12345"), (Channel.SMS, "5876543210"), (Channel.EMAIL, "not-an-email")],
)
def test_invalid_recipient_is_refused_before_anything_is_stored(channel, recipient):
    with pytest.raises(InvalidRecipient):
        notification_queue(
            template_code="receipt", channel=channel, recipient=recipient, context=receipt_context()
        )
    assert NotificationItem.count() == 0


def test_unknown_template_queues_nothing():
    with pytest.raises(TemplateNotFound):
        notification_queue(
            template_code="nope", channel=Channel.SMS, recipient=MOBILE, context=receipt_context()
        )
    assert NotificationItem.count() == 0


def test_welcome_goes_by_email_and_sms_when_the_user_has_both(django_capture_on_commit_callbacks):
    user = UserFactory(first_name="Asha", last_name="Rao", email=EMAIL, mobile=MOBILE)
    with django_capture_on_commit_callbacks(execute=True):
        items = welcome_notification_queue(user=user)
    assert sorted(i.channel for i in items) == ["EMAIL", "SMS"]
    assert {i.entity for i in items} == {f"accounts.user#{user.pk}"}
    assert {i.template_code for i in items} == {"welcome"}
    email = next(i for i in items if i.channel == Channel.EMAIL)
    assert email.subject == "Welcome to Sangam Finance Ltd"
    assert email.body.startswith("Dear Asha Rao,")
    assert user.username in email.body


def test_welcome_skips_what_the_user_lacks():
    no_mobile = UserFactory(email=EMAIL)
    no_email = UserFactory(mobile=MOBILE)
    neither = UserFactory()
    assert [i.channel for i in welcome_notification_queue(user=no_mobile)] == ["EMAIL"]
    assert [i.channel for i in welcome_notification_queue(user=no_email)] == ["SMS"]
    assert welcome_notification_queue(user=neither) == []


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_senders_send_once(settings):
    templates_seed()
    settings.NOTIFICATIONS_SMS_PROVIDER = "notifications.tests.providers.FlakyProvider"
    FlakyProvider.reset(delay=0.3)  # the first sender is still sending when the second comes
    item = notification_queue(
        template_code="receipt", channel=Channel.SMS, recipient=MOBILE, context=receipt_context()
    )
    assert item.status == reload(item).status == Status.QUEUED  # autocommit: released at once

    start = threading.Barrier(2)
    results = []

    def sender():
        start.wait()
        results.append(notification_send(notification_id=item.notification_id))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert FlakyProvider.accepted == [item.notification_id]
    assert FlakyProvider.calls == 1
    assert sorted(r is None for r in results) == [False, True]
    stored = reload(item)
    assert (stored.status, stored.attempts) == (Status.SENT, 1)
    FlakyProvider.reset()
