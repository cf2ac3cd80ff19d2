"""Reads of DynamoDB transactions for the API: index queries only, scoped to the caller."""

from __future__ import annotations

import re
from datetime import date

from accounts.models import Branch
from accounts.scoping import can_see_branch, scope_queryset
from core.errors import ApplicationError
from loans.models import LoanAccount
from payments.ddb_models import TransactionItem, branch_day_key
from payments.exceptions import LoanNotFound, TransactionNotFound
from payments.services import _store_call, transaction_body, transaction_get

TXN_ID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")  # a ULID, as payment_ingest makes them


def _page(result_iterator, limit: int) -> tuple[list[dict], dict | None]:
    rows = [transaction_body(item) for item in result_iterator]
    last_key = result_iterator.last_evaluated_key if len(rows) >= limit else None
    return rows, last_key


def transactions_of_loan_for_api(
    *, user, loan_number: str, limit: int, start_key: dict | None
) -> tuple[list[dict], dict | None]:
    loan = (
        scope_queryset(LoanAccount.objects.all(), user)
        .filter(loan_number=loan_number.upper())
        .first()
    )
    if loan is None:
        raise LoanNotFound(f"No loan account {loan_number} that you may see.")
    return _store_call(
        lambda: _page(
            TransactionItem.by_loan.query(
                loan.loan_number,
                scan_index_forward=False,
                limit=limit,
                last_evaluated_key=start_key,
            ),
            limit,
        )
    )


def transactions_of_branch_day_for_api(
    *, user, branch_code: str, business_date: str, limit: int, start_key: dict | None
) -> tuple[list[dict], dict | None]:
    try:
        day = date.fromisoformat(business_date)
    except ValueError:
        raise ApplicationError(
            "business_date must be a date (YYYY-MM-DD).", code="invalid", field="business_date"
        ) from None
    branch = scope_queryset(Branch.objects.all(), user).filter(code=branch_code.upper()).first()
    if branch is None:
        raise ApplicationError(
            f"No branch {branch_code} that you may see.", code="branch_not_found", status=404
        )
    return _store_call(
        lambda: _page(
            TransactionItem.by_branch_day.query(
                branch_day_key(branch.pk, day), limit=limit, last_evaluated_key=start_key
            ),
            limit,
        )
    )


def transaction_for_api(*, user, txn_id: str) -> dict:
    if not TXN_ID.match(txn_id):
        # never stored, and DynamoDB refuses a key over 2 KB instead of finding nothing
        raise TransactionNotFound(f"No transaction {txn_id[:40]}.")
    txn = transaction_get(txn_id=txn_id)
    if not can_see_branch(user, int(txn.branch_id)):
        raise TransactionNotFound(f"No transaction {txn_id}.")
    return transaction_body(txn)
