# The audit outbox becomes the topic "audit" of core's one outbox (issue 13): pending events
# move there, the browser's permission follows, and the old table goes.

from django.conf import settings
from django.db import migrations
from django.utils import timezone

TOPIC = "audit"
BATCH = 2000
PAYLOAD = ("action", "entity_repr", "actor_id", "actor_repr", "request_id", "ip", "changes", "remarks")


def events_to_outbox(apps, schema_editor):
    """Every event not yet relayed becomes a pending message (key = event id, ref = entity,
    created_at = when it happened). Relayed ones are in DynamoDB already: not copied."""
    AuditOutbox = apps.get_model("audit", "AuditOutbox")
    OutboxMessage = apps.get_model("core", "OutboxMessage")
    now = timezone.now()
    batch = []
    rows = AuditOutbox.objects.filter(relayed_at__isnull=True).order_by("id")
    for row in rows.iterator(chunk_size=BATCH):
        batch.append(
            OutboxMessage(
                topic=TOPIC,
                key=row.event_id,
                ref=row.entity,
                payload={name: getattr(row, name) for name in PAYLOAD},
                created_at=row.occurred_at,
                available_at=now,
            )
        )
        if len(batch) >= BATCH:
            OutboxMessage.objects.bulk_create(batch, ignore_conflicts=True)
            batch = []
    OutboxMessage.objects.bulk_create(batch, ignore_conflicts=True)


def events_back(apps, schema_editor):
    AuditOutbox = apps.get_model("audit", "AuditOutbox")
    OutboxMessage = apps.get_model("core", "OutboxMessage")
    pending = OutboxMessage.objects.filter(topic=TOPIC, done_at__isnull=True)
    AuditOutbox.objects.bulk_create(
        [
            AuditOutbox(
                event_id=message.key,
                entity=message.ref,
                occurred_at=message.created_at,
                **{name: message.payload.get(name) for name in PAYLOAD if name in message.payload},
            )
            for message in pending.order_by("id")
        ],
        ignore_conflicts=True,
    )
    pending.delete()


def browse_permission_follows(apps, schema_editor):
    """Whoever could browse the audit trail (audit.view_auditoutbox) keeps it as
    audit.view_events. The roles get it anyway (sync_roles after migrate)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    old = Permission.objects.filter(
        content_type__app_label="audit",
        content_type__model="auditoutbox",
        codename="view_auditoutbox",
    ).first()
    if old is None:
        return
    content_type, _ = ContentType.objects.get_or_create(app_label="audit", model="events")
    new, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="view_events", defaults={"name": "Can view audit event"}
    )
    new.group_set.add(*old.group_set.all())
    new.user_set.add(*old.user_set.all())


class Migration(migrations.Migration):

    dependencies = [
        ('audit', '0001_initial'),
        ('core', '0003_outbox'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditMessage',
            fields=[
            ],
            options={
                'verbose_name': 'audit outbox message',
                'proxy': True,
                'default_permissions': (),
                'indexes': [],
                'constraints': [],
            },
            bases=('core.outboxmessage',),
        ),
        migrations.RunPython(events_to_outbox, events_back),
        migrations.RunPython(browse_permission_follows, migrations.RunPython.noop),
        migrations.DeleteModel(
            name='Events',
        ),
        migrations.DeleteModel(
            name='AuditOutbox',
        ),
        migrations.CreateModel(
            name='Events',
            fields=[
            ],
            options={
                'verbose_name': 'audit event',
                'verbose_name_plural': 'audit events',
                'proxy': True,
                'default_permissions': ('view',),
                'indexes': [],
                'constraints': [],
            },
            bases=('audit.auditmessage',),
        ),
    ]
