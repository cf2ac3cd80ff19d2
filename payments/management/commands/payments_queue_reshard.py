from django.core.management.base import BaseCommand
from tqdm import tqdm

from dynamo.shards import backfill
from payments.ddb_models import POSTING, QueueItem, QueueStatus, queue_status_set


def _plan(item: QueueItem):
    """A live item keeps its status and gets its shard key; a DONE one stays out of the
    index (it expires)."""
    queue_type, _, status = item.queue_status.partition("#")
    if queue_type != POSTING or status == QueueStatus.DONE:
        return None
    return (
        queue_status_set(item.item_id, status, queue_type),
        QueueItem.queue_status == item.queue_status,
    )


class Command(BaseCommand):
    help = (
        "Once after upgrading to the sharded posting queue (docs/operations.md): give the "
        "READY, LEASED and DEAD items written before it their shard key, so that the "
        "sweeps and the admin see them. Scans the queue table; safe to run again and while "
        "workers post."
    )

    def handle(self, *args, verbosity: int, **options):
        with tqdm(desc="queue items", unit=" items", disable=verbosity < 1) as bar:
            seen, updated = backfill(
                QueueItem, missing=QueueItem.queue_shard, actions_for=_plan, progress=bar.update
            )
        self.stdout.write(
            f"posting queue: {seen:,} items without a shard key, {updated:,} given one"
        )
