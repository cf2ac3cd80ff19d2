"""The partners' results: payments, bounces and their charges, re-presentation.

A result is applied once, guarded by a row unique per execution id. Its DynamoDB side (the
execution's status, a success's NACH payment) is an outbox message (topic
``mandates.result``) written with the result: synced right after, again by the outbox's
relay when that failed, idempotently."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from pynamodb.exceptions import DoesNotExist

from core.clock import iso
from core.errors import ApplicationError, Conflict, NotFound
from core.models import OutboxMessage
from core.money import PAISA, from_paise
from core.outbox import outbox_add, outbox_deliver
from loans.models import LoanAccount, LoanCharge
from loans.refdata import loan_product
from loans.services import loan_charge_raise
from payments.exceptions import DuplicateReceipt
from payments.services import PaymentInput, payment_ingest

from ..ddb_models import MandateExecutionItem
from ..exceptions import ResultRejected
from ..models import (
    RESULT_TOPIC,
    ExecutionResult,
    Mandate,
    ReturnCodePolicy,
    ScheduledPresentation,
)
from ..refdata import ReturnCodeRef, return_codes
from ._common import _mandate_stop
from .schedule import next_working_day

logger = logging.getLogger(__name__)
S = Mandate.Status
P = ScheduledPresentation.Status


class _NachSystem:
    """Who a NACH collection is recorded by: the system, for every branch."""

    is_authenticated = True
    is_active = True
    is_superuser = True
    is_api_client = False
    pk = None

    def has_perm(self, perm) -> bool:
        return True


EXECUTION_ID = re.compile(r"^[A-Za-z0-9-]{1,40}$")
MAX_REASON = 200


@dataclass(frozen=True)
class PartnerResult:
    """One result a banking partner sends for an execution we presented."""

    execution_id: str
    status: str  # SUCCESS or BOUNCED
    return_code: str = ""
    reason: str = ""


def execution_result_validate(
    result: PartnerResult, *, policies: Mapping[str, ReturnCodeRef] | None = None
) -> ReturnCodeRef | None:
    """The rules of one result, wherever it comes from (the results API, a response file,
    the sandbox): raises ``ResultRejected`` naming the field; returns a bounce's return-code
    policy. ``policies``: the return codes, when the caller checks many results at once."""
    if not EXECUTION_ID.match(result.execution_id):
        raise ResultRejected(f"Invalid execution id {result.execution_id!r}.", field="execution_id")
    if result.status not in {"SUCCESS", "BOUNCED"}:
        raise ResultRejected(
            f"Status must be SUCCESS or BOUNCED, not {result.status!r}.", field="status"
        )
    if result.status == "SUCCESS" and result.return_code:
        raise ResultRejected("A success has no return code.", field="return_code")
    if result.status == "BOUNCED" and not result.return_code:
        raise ResultRejected("A bounce needs its return code.", field="return_code")
    policy = None
    if result.return_code:
        # cached reference data, a new version when the table changes
        policy = (return_codes() if policies is None else policies).get(result.return_code)
        if policy is None:
            raise ResultRejected(
                f"Unknown NACH return code {result.return_code!r}.", field="return_code"
            )
    if len(result.reason) > MAX_REASON:
        raise ResultRejected(f"The reason is longer than {MAX_REASON} characters.", field="reason")
    return policy


def execution_result_conflict(execution_id: str, recorded: tuple[str, str]) -> Conflict:
    """The refusal of a result for an execution that has another one, ``recorded``
    (status, return code)."""
    return Conflict(
        f"Execution {execution_id} already has the result {recorded[0]} {recorded[1]}".strip()
        + ".",
        code="result_conflict",
    )


def execution_result_apply(
    *,
    partner_code: str,
    execution_id: str,
    status: str,
    return_code: str = "",
    reason: str = "",
) -> str:
    """Apply a partner's result for one execution: ``applied`` the first time,
    ``duplicate`` when the same result comes again (nothing changes). Then its DynamoDB
    side, unless done already; when that fails (the store is down) the error is raised and
    the outbox's relay syncs it later."""
    policy = execution_result_validate(
        PartnerResult(execution_id, status, return_code or "", reason or "")
    )
    try:
        item = MandateExecutionItem.get(execution_id, consistent_read=True)
    except DoesNotExist:
        raise NotFound(f"No execution {execution_id}.", code="execution_not_found") from None
    if item.partner_code != partner_code:
        raise NotFound(f"No execution {execution_id} for this partner.", code="execution_not_found")
    outcome = _apply_in_ledger(item, status, return_code, reason, policy)
    outbox_deliver(RESULT_TOPIC, execution_id, raise_errors=True)
    return outcome


@transaction.atomic
def _apply_in_ledger(item, status: str, return_code: str, reason: str, policy) -> str:
    # Lock the presentation first: the same result delivered twice at once waits here and
    # then finds the first one's row. (The product comes from the reference data cache: joined
    # here, FOR UPDATE would lock the product's row for every bounce of every loan on it.)
    row = (
        ScheduledPresentation.objects.select_for_update()
        .select_related("mandate__loan", "mandate__payer")
        .get(pk=item.presentation_id)
    )
    existing = ExecutionResult.objects.filter(execution_id=item.execution_id).first()
    if existing is not None:
        recorded = (existing.status, existing.return_code)
        if recorded != (status, return_code or ""):
            raise execution_result_conflict(item.execution_id, recorded)
        return "duplicate"
    if row.attempts < int(item.attempt):
        # Written by a presentation run that died before handing its chunk over: never
        # presented (the presentation rows are the truth), so no result can be its.
        raise NotFound(f"No execution {item.execution_id}.", code="execution_not_found")
    ExecutionResult.objects.create(
        execution_id=item.execution_id,
        presentation=row,
        status=status,
        return_code=return_code or "",
        reason=reason[:200],
    )
    outbox_add(RESULT_TOPIC, item.execution_id)
    row.last_return_code = return_code or ""
    if status == "SUCCESS":
        row.status = P.SUCCEEDED
        row.save(update_fields=["status", "last_return_code"])
        return "applied"
    mandate = Mandate.objects.select_for_update().get(pk=row.mandate_id)
    loan = LoanAccount.objects.select_for_update().get(pk=mandate.loan_id)
    product = loan_product(loan.product_id)
    loan_charge_raise(
        loan=loan,
        instalment=row.instalment,
        kind=LoanCharge.Kind.BOUNCE,
        amount=product.bounce_charge,
        gst_rate=product.gst_rate_on_charges,
        reference=f"nach-bounce-{item.execution_id}",
        reason=f"NACH return {return_code} {policy.description}",
    )
    if policy.retryable and row.attempts < policy.max_presentations:
        row.status = P.RETRY_SCHEDULED
        row.presentation_date = next_working_day(
            timezone.localdate() + timedelta(days=policy.retry_after_days)
        )
        row.pre_debit_notified_at = None
    else:
        row.status = P.STOPPED
    row.save(
        update_fields=["status", "presentation_date", "pre_debit_notified_at", "last_return_code"]
    )
    if not policy.retryable and mandate.status == S.ACTIVE:
        action = ReturnCodePolicy.MandateAction
        to = {action.SUSPEND: S.SUSPENDED, action.CANCEL: S.CANCELLED}.get(policy.mandate_action)
        if to:
            _mandate_stop(
                mandate, to, actor=None, remarks=f"NACH return {return_code}: {policy.description}"
            )
    _bounce_notice(row, return_code, policy)
    return "applied"


def _bounce_notice(row: ScheduledPresentation, return_code: str, policy) -> None:
    from notifications.services import notification_queue

    product = loan_product(row.mandate.loan.product_id)
    charge = product.bounce_charge * (1 + product.gst_rate_on_charges / 100)
    try:
        notification_queue(
            template_code="bounce_notice",
            channel="SMS",
            recipient=row.mandate.payer.mobile,
            context={
                "customer_name": row.mandate.payer.name,
                "amount": row.amount,
                "loan_number": row.mandate.loan.loan_number,
                "due_date": row.due_date,
                "return_reason": policy.description,
                "reason": policy.description,
                "return_code": return_code,
                "charge": charge.quantize(PAISA),
                "bounce_charge": charge.quantize(PAISA),
            },
            entity=f"mandates.scheduledpresentation#{row.pk}",
        )
    except ApplicationError:
        logger.exception("bounce notice for presentation %s not queued", row.pk)


def execution_result_sync(*, execution_id: str) -> bool:
    """Bring DynamoDB in line with an applied result: the execution's status, and for a
    success the NACH payment through the ingestion flow (idempotent by execution id).
    ``False`` when there is no such result."""
    result = (
        ExecutionResult.objects.select_related("presentation__mandate__loan")
        .filter(execution_id=execution_id)
        .first()
    )
    if result is None:
        return False
    item = MandateExecutionItem.get(execution_id, consistent_read=True)
    actions = [
        MandateExecutionItem.status.set(result.status),
        MandateExecutionItem.result_at.set(iso(result.received_at)),
    ]
    if result.return_code:
        actions += [
            MandateExecutionItem.return_code.set(result.return_code),
            MandateExecutionItem.return_reason.set(result.reason or result.return_code),
        ]
    if result.status == "SUCCESS":
        try:
            ingested = payment_ingest(
                payment=PaymentInput(
                    loan_number=item.loan_number,
                    amount=from_paise(item.amount_paise),
                    mode="NACH",
                    receipt_number=f"NACH-{execution_id}",
                    collector=f"NACH {item.partner_code}",
                    external_reference=item.umrn,
                ),
                idempotency_key=f"nach-{execution_id}",
                principal=_NachSystem(),
                source=f"nach:{item.partner_code}",
            )
        except DuplicateReceipt as exc:
            # The receipt NACH-<execution> is this execution's own: it was recorded by an
            # earlier sync whose idempotency key has expired since. Not a second payment.
            actions.append(MandateExecutionItem.txn_id.set(exc.txn_id))
        except ApplicationError as exc:
            if exc.status >= 500:
                raise  # the store is down: the outbox's relay syncs it later
            # e.g. the loan was closed meanwhile: the money came, staff must refund it
            logger.error("NACH success %s not recorded as a payment: %s", execution_id, exc)
            actions.append(MandateExecutionItem.return_reason.set(f"not posted: {exc}"[:200]))
        else:
            actions.append(MandateExecutionItem.txn_id.set(ingested.body["txn_id"]))
    item.update(actions=actions)
    return True


def execution_result_deliver(message: OutboxMessage) -> None:
    """The outbox handler of ``mandates.result``."""
    execution_result_sync(execution_id=message.key)
