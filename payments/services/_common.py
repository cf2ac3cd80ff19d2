"""What more than one payments seam needs: statuses, the store call, the posting's enqueue."""

from __future__ import annotations

import logging
from datetime import date, datetime

from django.conf import settings
from pynamodb.exceptions import PynamoDBException

from accounts.models import Branch
from accounts.refdata import BranchRef
from core.batching import Batcher
from core.clock import business_date
from dynamo.errors import is_unavailable

from ..ddb_models import POSTING, QueueStatus  # noqa: F401 - the seams import them from here
from ..exceptions import StoreUnavailable

logger = logging.getLogger(__name__)


MODES = ("CASH", "UPI", "CHEQUE", "NEFT", "NACH")


class TxnStatus:
    RECEIVED = "RECEIVED"
    POSTED = "POSTED"
    FAILED = "FAILED"
    REVERSED = "REVERSED"


def business_date_for(branch: Branch | BranchRef, moment: datetime) -> date:
    """The IST date a payment counts for: after the branch's cut-off, the next day."""
    return business_date(moment, branch.cutoff_time)


def _store_call(fn, *args, **kwargs):
    """Run a DynamoDB call; an unreachable or overloaded store becomes a 503."""
    try:
        return fn(*args, **kwargs)
    except PynamoDBException as exc:
        if is_unavailable(exc):
            raise StoreUnavailable("The payments store is unavailable; retry shortly.") from exc
        raise


def _publish_postings(txn_ids: list[str]) -> None:
    from ..tasks import payments_post_these_task

    try:
        payments_post_these_task.delay(txn_ids)
    except Exception:  # the queue items in DynamoDB are the source of truth
        logger.warning(
            "could not enqueue posting of %s; the sweep will post them", ", ".join(txn_ids)
        )


# The payments a process accepts in the same moments are published as one task, by one
# thread, off the request (settings.PAYMENTS_PUBLISH_WINDOW_MS; 0 publishes each at once).
_postings = Batcher(_publish_postings, window_s=settings.PAYMENTS_PUBLISH_WINDOW_MS / 1000)


def _enqueue_posting(txn_id: str) -> None:
    """Post soon; if the broker is down (or the process ends before it publishes), the
    periodic sweep posts it anyway."""
    _postings.add(txn_id)
