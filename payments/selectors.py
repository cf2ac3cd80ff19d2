"""Reads of payments for the staff screens: transactions and the posting queue from
DynamoDB (always a Query on a key or an index, never a Scan), postings from Postgres.

DynamoDB pages are newest first (the queue: soonest due first) and continue from a
cursor: PynamoDB's ``last_evaluated_key`` of the page, signed with ``django.core.signing``
and bound to the query it came from, so that a user can neither forge a start key nor
carry one over to another loan, branch or queue. Every read takes the user and shows only
what ``accounts.scoping`` lets them see.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any

from django.conf import settings
from django.core import signing
from django.db.models import QuerySet
from django.utils import timezone
from pynamodb.exceptions import DoesNotExist, PynamoDBException

from accounts.models import Branch
from accounts.scoping import can_see_branch, scope_queryset, visible_branch_ids
from approvals.models import ApprovalRequest
from core.clock import iso, parse_iso
from core.errors import ApplicationError
from core.outbox import outbox_pending_keys
from dynamo.errors import is_unavailable
from dynamo.shards import merged_page
from loans.models import Instalment, LoanAccount

from .ddb_models import (
    QueueItem,
    TransactionItem,
    branch_day_key,
    queue_count,
    queue_live,
    queue_partitions,
)
from .exceptions import LoanNotFound, StoreUnavailable, TransactionNotFound
from .models import REVERSAL_TOPIC, BulkUpload, BulkUploadRow, Posting
from .services import POSTING, QueueStatus, transaction_body, transaction_get

PAGE_SIZE = 50
QUEUE_STATUSES = (QueueStatus.READY, QueueStatus.LEASED, QueueStatus.DEAD)
_CURSOR_SALT = "payments.selectors.cursor"
_IN_LIMIT = 100  # DynamoDB's IN takes at most 100 values
TXN_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")  # a ULID, as payment_ingest makes them


@dataclass(frozen=True)
class Page:
    """One page of plain rows and where the next page starts (None on the last)."""

    rows: list[dict[str, Any]]
    next_cursor: str | None = None
    next_key: dict | None = None  # the same place unsigned, for the API's own cursor


class InvalidCursor(ApplicationError):
    code = "invalid_cursor"
    status = 400


# --- Transactions (DynamoDB) ------------------------------------------------------------


def transaction_row(txn: TransactionItem) -> dict[str, Any]:
    """``transaction_body`` plus what staff screens need: ids, source, reversal, times as
    aware datetimes (shown in IST by the templates)."""
    return {
        **transaction_body(txn),
        "loan_id": int(txn.loan_id),
        "branch_id": int(txn.branch_id),
        "source": txn.source,
        "reversed_at": txn.reversed_at,
        "created": _moment(txn.created_at),
        "posted": _moment(txn.posted_at),
        "reversed": _moment(txn.reversed_at),
    }


def transactions_for_loan(
    *,
    loan: LoanAccount | str,
    user,
    limit: int = PAGE_SIZE,
    cursor: str | None = None,
    start_key: dict | None = None,
    shape: Callable[[TransactionItem], dict[str, Any]] = transaction_row,
    since: datetime.datetime | None = None,
) -> Page:
    """A loan's transactions, newest first (the ``loan_account`` index), for the staff
    screens (a signed ``cursor``) and the API (its own verified ``start_key``); ``loan`` is
    the loan or its number as typed. With ``since``, only those created at or after it (a
    range of the index's sort key: DynamoDB reads nothing older).

    Visibility, one rule for every read of a transaction (see ``transaction_visible``): a
    user sees a transaction when they may see the branch that recorded it (its ``branch_day``,
    the branch whose DCR counted it) or the branch that holds its loan now. So for a loan
    moved from branch A to branch B: B sees its whole history through the loan, A's
    collections included; A sees, by loan as by day or id, what A collected, and nothing
    recorded after the move. A loan of which the user may see no transaction is not found.
    """
    number = loan.loan_number if isinstance(loan, LoanAccount) else loan.strip().upper()
    holder = (
        loan.branch_id
        if isinstance(loan, LoanAccount)
        else LoanAccount.objects.filter(loan_number=number)
        .values_list("branch_id", flat=True)
        .first()
    )
    missing = LoanNotFound(f"No loan account {number} that you may see.")
    if holder is None:
        raise missing
    whole = can_see_branch(user, holder)
    filter_condition = None
    if not whole:
        branch_ids = visible_branch_ids(user)
        if not branch_ids:
            raise missing
        if len(branch_ids) <= _IN_LIMIT:
            filter_condition = TransactionItem.branch_id.is_in(*sorted(branch_ids))
    namespace = f"loan:{number}"
    first = not cursor and not start_key
    results = TransactionItem.by_loan.query(
        number,
        range_key_condition=None if since is None else TransactionItem.created_at >= iso(since),
        scan_index_forward=False,
        filter_condition=filter_condition,
        limit=limit + 1,
        last_evaluated_key=start_key or _cursor_read(cursor, namespace),
    )
    items, next_key = _page(results, limit)
    rows = [shape(t) for t in items if whole or can_see_branch(user, int(t.branch_id))]
    if first and since is None and not whole and not rows and next_key is None:
        raise missing
    return Page(rows, _cursor_write(next_key, namespace), next_key)


def transactions_for_branch_day(
    *,
    branch_id: int,
    business_date: datetime.date,
    user,
    limit: int = PAGE_SIZE,
    cursor: str | None = None,
    start_key: dict | None = None,
    shape: Callable[[TransactionItem], dict[str, Any]] = transaction_row,
) -> Page:
    """A branch's transactions of one business date, newest first (the ``branch_day``
    index, one partition per branch and day): those the branch recorded, so all of them
    are visible to whoever may see the branch (``transaction_visible``); a loan moved in
    later does not bring its earlier days here, they stay on the days of the branch that
    collected them."""
    if not can_see_branch(user, branch_id):
        raise ApplicationError(
            "No such branch that you may see.", code="branch_not_found", status=404
        )
    partition = branch_day_key(branch_id, business_date)
    namespace = f"branch_day:{partition}"
    results = TransactionItem.by_branch_day.query(
        partition,
        scan_index_forward=False,
        limit=limit + 1,
        last_evaluated_key=start_key or _cursor_read(cursor, namespace),
    )
    items, next_key = _page(results, limit)
    return Page([shape(t) for t in items], _cursor_write(next_key, namespace), next_key)


def transaction_for_user(
    *,
    txn_id: str,
    user,
    shape: Callable[[TransactionItem], dict[str, Any]] = transaction_row,
) -> dict[str, Any]:
    """One transaction by id; one the user may not see (``transaction_visible``) does not
    exist for them, and an id that is no ULID is not looked up (DynamoDB refuses a key over
    2 KB instead of finding nothing)."""
    txn_id = txn_id.strip().upper()
    if not TXN_ID.match(txn_id):
        raise TransactionNotFound(f"No transaction {txn_id[:40]}.")
    txn = transaction_get(txn_id=txn_id)
    if not transaction_visible(txn, user):
        raise TransactionNotFound(f"No transaction {txn_id}.")
    return shape(txn)


def transaction_visible(txn: TransactionItem, user) -> bool:
    """The one visibility rule of a transaction: the user may see the branch that recorded
    it or the branch that holds its loan now (see ``transactions_for_loan``)."""
    if can_see_branch(user, int(txn.branch_id)):
        return True
    holder = LoanAccount.objects.filter(pk=int(txn.loan_id)).values_list("branch_id", flat=True)
    return holder.first() in (visible_branch_ids(user) or ())


def branch_for_user(*, code: str, user) -> Branch:
    """A branch by its code, among those the user may see."""
    branch = branches_visible(user=user).filter(code=code.strip().upper()).first()
    if branch is None:
        raise ApplicationError(
            f"No branch {code} that you may see.", code="branch_not_found", status=404
        )
    return branch


# --- The posting queue (DynamoDB) -----------------------------------------------------


def queue_row(item: QueueItem) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "txn_id": item.txn_id,
        "loan_account": item.loan_number,
        "branch_id": int(item.branch_id),
        "status": item.queue_status.partition("#")[2],
        "attempts": int(item.attempts or 0),
        "next_attempt": _moment(item.next_attempt_at),
        "lease_owner": item.lease_owner or "",
        "last_error": item.last_error or "",
        "created": _moment(item.created_at),
        "updated": _moment(item.updated_at),
    }


def queue_items(*, status: str, user, limit: int = PAGE_SIZE, cursor: str | None = None) -> Page:
    """Posting work by status (every shard of the ``queue_shard`` index, merged): READY
    and LEASED soonest due first, DEAD latest first. Only items of branches the user may
    see."""
    if status not in QUEUE_STATUSES:
        raise ApplicationError(f"Unknown queue status {status!r}.", code="invalid", field="status")
    branch_ids = visible_branch_ids(user)
    if branch_ids is not None and not branch_ids:
        return Page([])
    namespace = f"queue:{POSTING}#{status}"
    filter_condition = queue_live(timezone.now())
    if branch_ids is not None and len(branch_ids) <= _IN_LIMIT:
        filter_condition &= QueueItem.branch_id.is_in(*sorted(branch_ids))

    def fetch(key: str, start: dict | None, count: int) -> tuple[list, dict | None]:
        results = QueueItem.by_shard.query(
            key,
            scan_index_forward=status != QueueStatus.DEAD,
            filter_condition=filter_condition,
            limit=count + 1,
            last_evaluated_key=start,
        )
        return _page(results, count)

    items, state = _store(
        lambda: merged_page(
            fetch=fetch,
            keys=queue_partitions(status),
            state=_cursor_read(cursor, namespace),
            limit=limit,
            order=lambda item: (item.next_attempt_at, item.item_id),
            reverse=status == QueueStatus.DEAD,
            last_key=_queue_index_key,
        )
    )
    # Beyond 100 branches the filter happens here (pages may then be short).
    rows = [queue_row(i) for i in items if can_see_branch(user, int(i.branch_id))]
    return Page(rows, _cursor_write(state, namespace))


def _queue_index_key(item: QueueItem) -> dict:
    """The start key that continues a ``queue_shard`` query after ``item``."""
    return {
        "item_id": {"S": item.item_id},
        "queue_shard": {"S": item.queue_shard},
        "next_attempt_at": {"S": item.next_attempt_at},
    }


QUEUE_COUNT_LIMIT = 100_000  # counting a deep backlog reads it; beyond this the count saturates


def queue_counts(*, limit: int = QUEUE_COUNT_LIMIT) -> dict[str, int]:
    """Live items of the posting queue by status, every branch's (``/metrics`` and head
    office's start page): every shard counted at once."""
    live = queue_live(timezone.now())
    per_shard = -(-limit // settings.PAYMENTS_QUEUE_SHARDS)
    return {
        status: queue_count(status, filter_condition=live, limit=per_shard)
        for status in QUEUE_STATUSES
    }


def queue_item_for_user(*, item_id: str, user) -> dict[str, Any] | None:
    """One queue item, or None when it does not exist or its branch is not visible."""
    try:
        item = _store(lambda: QueueItem.get(item_id, consistent_read=True))
    except DoesNotExist:
        return None
    if item.expires_at is not None and item.expires_at <= timezone.now():
        return None  # expired, not yet deleted by DynamoDB
    if not can_see_branch(user, int(item.branch_id)):
        return None
    return queue_row(item)


# --- Postgres -------------------------------------------------------------------------


def postings_visible(*, user) -> QuerySet[Posting]:
    return scope_queryset(Posting.objects.select_related("loan", "branch"), user)


def postings_for_loan(*, loan: LoanAccount, user, limit: int = 20) -> list[Posting]:
    return list(postings_visible(user=user).filter(loan=loan).order_by("-posted_at")[:limit])


def branches_visible(*, user) -> QuerySet[Branch]:
    return scope_queryset(Branch.objects.all(), user).order_by("code")


def posting_allocation_rows(posting: Posting) -> list[dict[str, Any]]:
    """The posting's split per instalment (oldest first), with each instalment's due date."""
    due_dates = dict(
        Instalment.objects.filter(
            pk__in=[a["instalment"] for a in posting.allocations]
        ).values_list("pk", "due_date")
    )
    rows = []
    for allocation in posting.allocations:
        parts = {c: Decimal(allocation[c]) for c in ("charges", "interest", "principal")}
        rows.append(
            {
                "number": allocation["number"],
                "due_date": due_dates.get(allocation["instalment"]),
                **parts,
                "total": sum(parts.values(), Decimal("0.00")),
            }
        )
    return rows


def reversal_requests_for(posting: Posting) -> QuerySet[ApprovalRequest]:
    return ApprovalRequest.objects.filter(
        kind=ApprovalRequest.Kind.PAYMENT_REVERSAL, entity=f"payments.posting#{posting.pk}"
    )


def reversal_sync_pending(posting: Posting) -> bool:
    """Whether a reversed posting's transaction is still to be marked REVERSED in DynamoDB
    (its outbox message is pending)."""
    return bool(outbox_pending_keys(REVERSAL_TOPIC, [posting.txn_id]))


def reversal_request_detail(*, approval: ApprovalRequest, user) -> dict[str, Any] | None:
    """The approvals detail page of a payment reversal shows the posting's allocation."""
    txn_id = (approval.payload or {}).get("txn_id")
    posting = postings_visible(user=user).filter(txn_id=txn_id).first() if txn_id else None
    if posting is None:
        return None
    return {
        "template": "admin/payments/posting/_allocation.html",
        "posting": posting,
        "allocations": posting_allocation_rows(posting),
    }


# --- The customer's page (a section registered with loans.panels) ------------------------

CUSTOMER_RECEIPTS_SHOWN = 10
CUSTOMER_RECEIPT_LOANS = 20  # the customer's latest loans whose payments are read


def customer_receipts(*, customer, user, limit: int = CUSTOMER_RECEIPTS_SHOWN) -> list[dict]:
    """The latest ``limit`` payments of the customer's loans, newest first, from DynamoDB
    (every status: received, posted, failed, reversed): one Query of the ``loan_account``
    index per loan, of at most ``limit`` items, for the customer's latest
    ``CUSTOMER_RECEIPT_LOANS`` loans. Raises ``StoreUnavailable``."""
    loans = scope_queryset(LoanAccount.objects.filter(customer=customer), user).order_by("-id")
    rows = []
    for loan in loans[:CUSTOMER_RECEIPT_LOANS]:
        rows.extend(transactions_for_loan(loan=loan, user=user, limit=limit).rows)
    rows.sort(key=lambda row: row["created_at"], reverse=True)
    return rows[:limit]


def customer_receipts_panel(customer, user) -> dict[str, Any] | None:
    if not user.has_perm("payments.view_posting"):
        return None
    try:
        rows, error = customer_receipts(customer=customer, user=user), None
    except StoreUnavailable as exc:
        rows, error = [], str(exc)
    return {"template": "admin/payments/_customer_receipts.html", "rows": rows, "error": error}


# --- Internals ------------------------------------------------------------------------


def _store(fn: Callable[[], Any]) -> Any:
    """Run a DynamoDB read; an unreachable or overloaded store becomes ``StoreUnavailable``."""
    try:
        return fn()
    except PynamoDBException as exc:
        if is_unavailable(exc):
            raise StoreUnavailable("The payments store is unavailable; retry shortly.") from exc
        raise


def _page(results: Iterable, limit: int) -> tuple[list, dict | None]:
    """Up to ``limit`` items of a query run with ``limit + 1``, and the key to continue
    after the last of them (None when nothing follows)."""

    def read() -> tuple[list, dict | None]:
        items = list(islice(results, limit))
        key = results.last_evaluated_key  # after the last item taken, mid-page or not
        more = len(items) == limit and next(results, None) is not None
        return items, key if more else None

    return _store(read)


def _cursor_write(key: dict | None, namespace: str) -> str | None:
    if not key:
        return None
    return signing.dumps({"n": namespace, "k": key}, salt=_CURSOR_SALT, compress=True)


def _cursor_read(cursor: str | None, namespace: str) -> dict | None:
    if not cursor:
        return None
    try:
        payload = signing.loads(cursor, salt=_CURSOR_SALT)
    except signing.BadSignature:
        payload = None
    if not isinstance(payload, dict) or payload.get("n") != namespace:
        raise InvalidCursor("This page link is not valid (any more); start from the first page.")
    return payload["k"]


def _moment(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return parse_iso(text)


# --- Bulk repayment uploads ---------------------------------------------------------------


def bulk_uploads_for(user) -> QuerySet[BulkUpload]:
    """The uploads a user sees: their branches' (an upload's branch is its uploader's, or
    the one branch of its loans), and their own (a file of several branches has none)."""
    uploads = BulkUpload.objects.select_related("branch", "uploaded_by", "imported_by")
    if visible_branch_ids(user) is None:
        return uploads
    return scope_queryset(uploads, user) | uploads.filter(uploaded_by=user)


def bulk_upload_rows(upload: BulkUpload, *, problems_only: bool = False) -> QuerySet:
    """An upload's rows in file order, with their loan's customer (names on the screen);
    ``problems_only``: the invalid and refused rows."""
    rows = upload.rows.select_related("loan__customer").order_by("number")
    if problems_only:
        rows = rows.filter(status__in=[BulkUploadRow.Status.INVALID, BulkUploadRow.Status.REFUSED])
    return rows
