"""What more than one payments seam needs: statuses, the store call, the posting's enqueue."""

from __future__ import annotations

import logging
from datetime import date, datetime

from pynamodb.exceptions import PynamoDBException

from accounts.models import Branch
from accounts.refdata import BranchRef
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


def _enqueue_posting(txn_id: str) -> None:
    """Post soon; if the broker is down, the periodic sweep posts it anyway."""
    from ..tasks import payment_post_task

    try:
        payment_post_task.delay(txn_id)
    except Exception:  # the queue item in DynamoDB is the source of truth
        logger.warning("could not enqueue posting of %s; the sweep will post it", txn_id)
