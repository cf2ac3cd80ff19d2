# Releases waiting for their after-commit step become messages of core's one outbox, topic
# "notifications.release" (issue 13); PendingRelease goes.

import datetime

from django.db import migrations

TOPIC = "notifications.release"
GRACE = datetime.timedelta(seconds=60)  # core.outbox.INLINE_GRACE


def releases_to_outbox(apps, schema_editor):
    PendingRelease = apps.get_model("notifications", "PendingRelease")
    OutboxMessage = apps.get_model("core", "OutboxMessage")
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                topic=TOPIC,
                key=row.notification_id,
                payload={
                    "channel": row.channel,
                    "due_at": row.due_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                },
                created_at=row.created_at,
                available_at=row.created_at + GRACE,
            )
            for row in PendingRelease.objects.order_by("created_at")
        ],
        ignore_conflicts=True,
    )


def releases_back(apps, schema_editor):
    PendingRelease = apps.get_model("notifications", "PendingRelease")
    OutboxMessage = apps.get_model("core", "OutboxMessage")
    pending = OutboxMessage.objects.filter(topic=TOPIC, done_at__isnull=True)
    PendingRelease.objects.bulk_create(
        [
            PendingRelease(
                notification_id=message.key,
                channel=message.payload["channel"],
                due_at=datetime.datetime.fromisoformat(message.payload["due_at"]),
                created_at=message.created_at,
            )
            for message in pending
        ],
        ignore_conflicts=True,
    )
    pending.delete()


class Migration(migrations.Migration):

    dependencies = [
        ('notifications', '0003_pending_release'),
        ('core', '0003_outbox'),
    ]

    operations = [
        migrations.RunPython(releases_to_outbox, releases_back),
        migrations.DeleteModel(
            name='PendingRelease',
        ),
    ]
