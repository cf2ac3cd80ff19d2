# A reversal not yet marked in DynamoDB becomes a message of core's one outbox, topic
# "payments.reversal" (issue 13); reversal_synced_at and its index go.

from django.db import migrations
from django.utils import timezone

TOPIC = "payments.reversal"


def unsynced_to_outbox(apps, schema_editor):
    Posting = apps.get_model("payments", "Posting")
    OutboxMessage = apps.get_model("core", "OutboxMessage")
    now = timezone.now()
    unsynced = Posting.objects.filter(reversed_at__isnull=False, reversal_synced_at__isnull=True)
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(topic=TOPIC, key=txn_id, created_at=reversed_at, available_at=now)
            for txn_id, reversed_at in unsynced.values_list("txn_id", "reversed_at")
        ],
        ignore_conflicts=True,
    )


def unsynced_back(apps, schema_editor):
    """The field is back (empty): every reversal is synced but those still pending."""
    Posting = apps.get_model("payments", "Posting")
    OutboxMessage = apps.get_model("core", "OutboxMessage")
    pending = OutboxMessage.objects.filter(topic=TOPIC, done_at__isnull=True)
    Posting.objects.filter(reversed_at__isnull=False).exclude(
        txn_id__in=pending.values("key")
    ).update(reversal_synced_at=timezone.now())
    pending.delete()


class Migration(migrations.Migration):

    dependencies = [
        ('payments', '0003_plural_name'),
        ('core', '0003_outbox'),
    ]

    operations = [
        migrations.RunPython(unsynced_to_outbox, unsynced_back),
        migrations.RemoveIndex(
            model_name='posting',
            name='posting_reversal_unsynced',
        ),
        migrations.RemoveField(
            model_name='posting',
            name='reversal_synced_at',
        ),
    ]
