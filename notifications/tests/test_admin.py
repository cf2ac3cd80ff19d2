import re

import pytest
from django.test import Client

from notifications.admin import OutboxAdmin
from notifications.models import Channel, NotificationStatus
from notifications.services import notification_send
from tests.factories import EMAIL, MOBILE, UserFactory, queued, reload

Status = NotificationStatus
OUTBOX = "/admin/notifications/outbox/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client):
    client.force_login(UserFactory(permissions=["view_notificationtemplate"]))
    return client


@pytest.fixture
def operator(client):
    client.force_login(
        UserFactory(permissions=["view_notificationtemplate", "change_notificationtemplate"])
    )
    return client


@pytest.fixture
def failed_sms(settings):
    settings.NOTIFICATIONS_SMS_PROVIDER = "notifications.tests.providers.RejectingProvider"
    item = queued(channel=Channel.SMS, recipient=MOBILE)
    notification_send(notification_id=item.notification_id)
    settings.NOTIFICATIONS_SMS_PROVIDER = "development"
    return reload(item)


def _rows(response) -> int:
    return len(re.findall(r'href="/admin/notifications/outbox/[0-9A-Z]{26}/"', response.text))


def test_outbox_is_reachable_from_the_admin_index(viewer):
    response = viewer.get("/admin/")
    assert response.status_code == 200
    assert f'href="{OUTBOX}"' in response.text


def test_outbox_lists_by_status_and_channel_with_recipients_masked(
    viewer, failed_sms, django_assert_max_num_queries
):
    sent_email = queued(channel=Channel.EMAIL, recipient=EMAIL)
    notification_send(notification_id=sent_email.notification_id)

    with django_assert_max_num_queries(4):  # session user and permissions; nothing per row
        response = viewer.get(OUTBOX, {"status": "FAILED", "channel": "SMS"})
    assert response.status_code == 200
    assert _rows(response) == 1
    assert "XXXXXX3210" in response.text
    assert "do-not-disturb" in response.text
    assert MOBILE not in response.text

    response = viewer.get(OUTBOX, {"status": "SENT", "channel": "EMAIL"})
    assert _rows(response) == 1
    assert "r***@example.com" in response.text
    assert EMAIL not in response.text

    assert _rows(viewer.get(OUTBOX, {"status": "SENT", "channel": "SMS"})) == 0


def test_outbox_pages_with_dynamodbs_last_evaluated_key(viewer, monkeypatch):
    monkeypatch.setattr(OutboxAdmin, "list_per_page", 2)
    ids = {queued().notification_id for _ in range(3)}

    first = viewer.get(OUTBOX, {"status": "QUEUED", "channel": "SMS"})
    assert _rows(first) == 2
    next_link = re.search(r'href="(\?status=QUEUED&amp;channel=SMS&amp;cursor=[^"]+)"', first.text)
    assert next_link
    second = viewer.get(OUTBOX + next_link.group(1).replace("&amp;", "&"))
    assert _rows(second) == 1
    assert "cursor=" not in second.text.split("First page")[-1]
    shown = set(
        re.findall(r"/admin/notifications/outbox/([0-9A-Z]{26})/", first.text + second.text)
    )
    assert shown == ids


def test_a_cursor_that_is_not_ours_gives_the_first_page(viewer):
    queued()
    for cursor in ["garbage", "eyJhIjogMX0=", "e30="]:
        response = viewer.get(OUTBOX, {"status": "QUEUED", "channel": "SMS", "cursor": cursor})
        assert response.status_code == 200
        assert _rows(response) == 1


def test_detail_shows_the_rendered_message_but_never_the_recipient(viewer):
    item = queued(channel=Channel.SMS, recipient=MOBILE)
    response = viewer.get(f"{OUTBOX}{item.notification_id}/")
    assert response.status_code == 200
    assert "we have received ₹1,23,456.70 towards loan LN0001234" in response.text
    assert "XXXXXX3210" in response.text
    assert MOBILE not in response.text
    assert "Retry" not in response.text


def test_unknown_notification_is_404(viewer):
    assert viewer.get(f"{OUTBOX}01J0000000000000000000000Z/").status_code == 404


def test_staff_with_change_permission_retry_a_failed_notification(operator, failed_sms):
    detail = f"{OUTBOX}{failed_sms.notification_id}/"
    page = operator.get(detail)
    assert 'value="Retry"' in page.text

    response = operator.post(f"{detail}retry/")

    assert response.status_code == 302
    assert response["Location"] == detail
    assert reload(failed_sms).status == Status.QUEUED
    assert "Re-queued" in operator.get(detail).text


def test_retry_of_a_notification_that_is_not_failed_is_refused_with_a_message(operator):
    item = queued()
    response = operator.post(f"{OUTBOX}{item.notification_id}/retry/", follow=True)
    assert "Not re-queued: only a failed notification can be retried" in response.text
    assert reload(item).status == Status.QUEUED


def test_viewers_cannot_retry(viewer, failed_sms):
    detail = f"{OUTBOX}{failed_sms.notification_id}/"
    assert 'value="Retry"' not in viewer.get(detail).text
    assert viewer.post(f"{detail}retry/").status_code == 403
    assert reload(failed_sms).status == Status.FAILED


def test_retry_needs_a_post_with_a_csrf_token(failed_sms):
    client = Client(enforce_csrf_checks=True)
    client.force_login(
        UserFactory(permissions=["view_notificationtemplate", "change_notificationtemplate"])
    )
    retry = f"{OUTBOX}{failed_sms.notification_id}/retry/"
    assert client.get(retry).status_code == 405
    assert client.post(retry).status_code == 403
    assert reload(failed_sms).status == Status.FAILED

    page = client.get(f"{OUTBOX}{failed_sms.notification_id}/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    assert client.post(retry, {"csrfmiddlewaretoken": token}).status_code == 302
    assert reload(failed_sms).status == Status.QUEUED


def test_staff_without_the_permission_are_refused(client, failed_sms):
    client.force_login(UserFactory())
    assert client.get(OUTBOX).status_code == 403
    assert client.get(f"{OUTBOX}{failed_sms.notification_id}/").status_code == 403
    assert client.get(f"{OUTBOX}development/").status_code == 403
    assert client.post(f"{OUTBOX}{failed_sms.notification_id}/retry/").status_code == 403
    assert f'href="{OUTBOX}"' not in client.get("/admin/").text


def test_anonymous_users_are_sent_to_the_login(client):
    response = client.get(OUTBOX)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_development_outbox_shows_what_would_have_been_sent_masked(viewer):
    item = queued(channel=Channel.SMS, recipient=MOBILE)
    notification_send(notification_id=item.notification_id)
    response = viewer.get(f"{OUTBOX}development/")
    assert response.status_code == 200
    assert item.notification_id in response.text
    assert "XXXXXX3210" in response.text
    assert MOBILE not in response.text


def test_templates_are_editable_in_the_admin(admin_client):
    response = admin_client.get("/admin/notifications/notificationtemplate/")
    assert response.status_code == 200
    assert "pre_debit_notice" in response.text
