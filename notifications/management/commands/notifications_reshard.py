from django.core.management.base import BaseCommand
from tqdm import tqdm

from dynamo.shards import backfill
from notifications.ddb_models import NotificationItem


def _plan(item: NotificationItem):
    return (
        NotificationItem.status_set(item.notification_id, item.status, item.channel),
        NotificationItem.status == item.status,
    )


class Command(BaseCommand):
    help = (
        "Once after upgrading to the sharded notifications index (docs/operations.md): give "
        "the notifications written before it their shard key, so that the dispatcher and "
        "the outbox screens see them. Scans the table; safe to run again and while "
        "senders work."
    )

    def handle(self, *args, verbosity: int, **options):
        with tqdm(desc="notifications", unit=" items", disable=verbosity < 1) as bar:
            seen, updated = backfill(
                NotificationItem,
                missing=NotificationItem.status_channel_shard,
                actions_for=_plan,
                progress=bar.update,
            )
        self.stdout.write(f"notifications: {seen:,} without a shard key, {updated:,} given one")
