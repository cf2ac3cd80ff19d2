"""Reversal through maker-checker: request, reverse (reopen exactly the dues a posting
paid), and mark DynamoDB's transaction REVERSED after commit (an outbox message of the topic
``payments.reversal``, written with the reversal: ``core.outbox``).
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django.utils import timezone
from pynamodb.exceptions import PynamoDBException

from accounts.scoping import scope_queryset
from approvals.services import KindHandler, approval_request_create
from audit.services import audit_record
from core.clock import iso
from core.models import OutboxMessage
from core.money import inr
from core.outbox import outbox_add
from dynamo.errors import is_unavailable
from loans.models import Instalment, LoanAccount
from loans.services import loan_dues_refresh

from ..ddb_models import TransactionItem
from ..exceptions import PaymentRejected, StoreUnavailable, TransactionNotFound
from ..models import REVERSAL_TOPIC, Posting
from ._common import TxnStatus

logger = logging.getLogger(__name__)


def payment_reversal_request(*, txn_id: str, reason: str, actor):
    posting = (
        scope_queryset(Posting.objects.select_related("loan"), actor).filter(txn_id=txn_id).first()
    )
    if posting is None:
        raise TransactionNotFound(f"No posted payment {txn_id} that you may see.")
    if posting.reversed_at:
        raise PaymentRejected("This payment is already reversed.", code="already_reversed")
    return approval_request_create(
        kind="PAYMENT_REVERSAL",
        branch_id=posting.branch_id,
        entity=f"payments.posting#{posting.pk}",
        entity_repr=f"{inr(posting.amount)} on {posting.loan.loan_number} ({txn_id})",
        reason=reason,
        payload={"txn_id": txn_id},
        actor=actor,
    )


def payment_reverse(*, txn_id: str, actor) -> Posting:
    """Undo a posting: reopen exactly the dues it paid. Runs inside the approval's
    transaction; DynamoDB's transaction is marked REVERSED after commit (the outbox)."""
    posting = Posting.objects.select_for_update().get(txn_id=txn_id)
    if posting.reversed_at:
        raise PaymentRejected("This payment is already reversed.", code="already_reversed")
    loan = LoanAccount.objects.select_for_update().get(pk=posting.loan_id)
    instalments = {i.pk: i for i in loan.instalments.select_for_update()}
    for allocation in posting.allocations:
        inst = instalments[allocation["instalment"]]
        inst.charges_paid -= Decimal(allocation["charges"])
        inst.interest_paid -= Decimal(allocation["interest"])
        inst.principal_paid -= Decimal(allocation["principal"])
        inst.status = inst.derived_status
    Instalment.objects.bulk_update(
        list(instalments.values()), ["charges_paid", "interest_paid", "principal_paid", "status"]
    )
    posting.reversed_at = timezone.now()
    posting.reversed_by = actor
    posting.save(update_fields=["reversed_at", "reversed_by"])
    loan_dues_refresh(loan=loan)
    # the last payment is now the latest one not reversed (or none)
    last = (
        Posting.objects.filter(loan=loan, reversed_at__isnull=True)
        .order_by("-business_date", "-id")
        .values_list("business_date", "amount")
        .first()
    )
    loan.last_payment_date, loan.last_payment_amount = last or (None, Decimal("0.00"))
    changed = ["last_payment_date", "last_payment_amount"]
    if loan.status == LoanAccount.Status.CLOSED and loan.total_outstanding > 0:
        loan.status = LoanAccount.Status.ACTIVE
        changed.append("status")
    loan.save(update_fields=[*changed, "updated_at"])
    audit_record(
        instance_or_entity=posting,
        action="transition",
        changes={"status": ["POSTED", "REVERSED"], "amount": [str(posting.amount), None]},
        actor=actor,
    )
    outbox_add(REVERSAL_TOPIC, txn_id)
    return posting


def payment_reversal_sync(*, txn_id: str) -> bool:
    """Mark DynamoDB's transaction REVERSED for a reversed posting (idempotent); ``False``
    when the posting is not reversed. Raises ``StoreUnavailable``."""
    posting = Posting.objects.filter(txn_id=txn_id, reversed_at__isnull=False).first()
    if posting is None:
        return False
    try:
        TransactionItem(txn_id).update(
            actions=[
                TransactionItem.status.set(TxnStatus.REVERSED),
                TransactionItem.reversed_at.set(iso(posting.reversed_at)),
            ],
            condition=TransactionItem.status.is_in(TxnStatus.POSTED, TxnStatus.REVERSED),
        )
    except PynamoDBException as exc:
        if is_unavailable(exc):
            raise StoreUnavailable("The payments store is unavailable.") from exc
        raise
    return True


def payment_reversal_deliver(message: OutboxMessage) -> None:
    """The outbox handler of ``payments.reversal``."""
    payment_reversal_sync(txn_id=message.key)


def _apply_reversal(*, request, actor) -> None:
    payment_reverse(txn_id=request.payload["txn_id"], actor=actor)


# The approval kinds of this app, registered by PaymentsConfig.ready().
APPROVAL_KINDS = {
    "PAYMENT_REVERSAL": KindHandler(
        maker_permission="payments.request_reversal",
        checker_permission="payments.approve_reversal",
        apply=_apply_reversal,
    ),
}
