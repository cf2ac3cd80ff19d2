# A result whose DynamoDB side is not synced yet becomes a message of core's one outbox,
# topic "mandates.result" (issue 13); dynamo_synced_at and its index go.

from django.db import migrations
from django.utils import timezone

TOPIC = "mandates.result"
BATCH = 2000


def unsynced_to_outbox(apps, schema_editor):
    ExecutionResult = apps.get_model("mandates", "ExecutionResult")
    OutboxMessage = apps.get_model("core", "OutboxMessage")
    now = timezone.now()
    unsynced = ExecutionResult.objects.filter(dynamo_synced_at__isnull=True).order_by("id")
    batch = []
    for execution_id, received_at in unsynced.values_list("execution_id", "received_at").iterator(
        chunk_size=BATCH
    ):
        batch.append(
            OutboxMessage(topic=TOPIC, key=execution_id, created_at=received_at, available_at=now)
        )
        if len(batch) >= BATCH:
            OutboxMessage.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    OutboxMessage.objects.bulk_create(batch, ignore_conflicts=True)


def unsynced_back(apps, schema_editor):
    """The field is back (empty): every result is synced but those still pending."""
    ExecutionResult = apps.get_model("mandates", "ExecutionResult")
    OutboxMessage = apps.get_model("core", "OutboxMessage")
    pending = OutboxMessage.objects.filter(topic=TOPIC, done_at__isnull=True)
    ExecutionResult.objects.exclude(execution_id__in=pending.values("key")).update(
        dynamo_synced_at=timezone.now()
    )
    pending.delete()


class Migration(migrations.Migration):

    dependencies = [
        ('mandates', '0007_delete_presentationrun'),
        ('core', '0003_outbox'),
    ]

    operations = [
        migrations.RunPython(unsynced_to_outbox, unsynced_back),
        migrations.RemoveIndex(
            model_name='executionresult',
            name='result_unsynced',
        ),
        migrations.RemoveField(
            model_name='executionresult',
            name='dynamo_synced_at',
        ),
    ]
