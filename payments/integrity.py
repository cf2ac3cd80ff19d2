"""Compare DynamoDB's transactions with the ledger's postings, loan by loan."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from accounts.models import Branch
from core.clock import iso
from core.money import from_paise
from core.outbox import outbox_pending_keys

from .ddb_models import TransactionItem, branch_day_key
from .models import REVERSAL_TOPIC, Posting
from .services import MIGRATED, MIGRATED_MODE, TxnStatus


@dataclass
class IntegrityReport:
    transactions: int = 0
    postings: int = 0
    branch_days: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.differences


def days(start: date, end: date) -> Iterable[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def integrity_check(
    *,
    start: date,
    end: date,
    branches: list[Branch] | None = None,
    grace: timedelta = timedelta(minutes=15),
    progress: Callable[[Iterable], Iterable] = lambda it: it,
) -> IntegrityReport:
    branches = branches if branches is not None else list(Branch.objects.order_by("code"))
    report = IntegrityReport()
    stale_before = iso(timezone.now() - grace)
    txns: dict[str, TransactionItem] = {}
    keys = [(b, d) for b in branches for d in days(start, end)]
    for branch, day in progress(keys):
        report.branch_days += 1
        for txn in TransactionItem.by_branch_day.query(branch_day_key(branch.pk, day)):
            if txn.source != MIGRATED:  # history brought in: its effect is the opening balance
                txns[txn.txn_id] = txn
    report.transactions = len(txns)
    postings = {
        p.txn_id: p
        for p in Posting.objects.filter(business_date__range=(start, end), branch__in=branches)
        .exclude(mode=MIGRATED_MODE)
        .select_related("loan")
    }
    report.postings = len(postings)
    # A reversal whose outbox message is still pending has not reached DynamoDB yet.
    reversal_pending = outbox_pending_keys(
        REVERSAL_TOPIC, (txn_id for txn_id, p in postings.items() if p.reversed_at)
    )

    by_loan: dict[str, list[str]] = defaultdict(list)
    for txn_id, txn in txns.items():
        posting = postings.get(txn_id)
        amount = from_paise(txn.amount_paise)
        if txn.status == TxnStatus.POSTED and posting is None:
            by_loan[txn.loan_number].append(f"{txn_id} POSTED ₹{amount} has no posting")
        elif txn.status == TxnStatus.RECEIVED and posting is None and txn.created_at < stale_before:
            by_loan[txn.loan_number].append(f"{txn_id} RECEIVED at {txn.created_at}, not posted")
        elif txn.status == TxnStatus.FAILED and posting is not None:
            by_loan[txn.loan_number].append(f"{txn_id} FAILED but posted as ₹{posting.amount}")
        elif txn.status == TxnStatus.REVERSED and (posting is None or not posting.reversed_at):
            by_loan[txn.loan_number].append(f"{txn_id} REVERSED but the posting is not reversed")
        if posting is None:
            continue
        if posting.amount != amount:
            by_loan[txn.loan_number].append(
                f"{txn_id} amount ₹{amount} in DynamoDB, ₹{posting.amount} in the ledger"
            )
        if (
            posting.reversed_at
            and txn.status != TxnStatus.REVERSED
            and txn_id not in reversal_pending
        ):
            by_loan[txn.loan_number].append(f"{txn_id} reversed in the ledger, {txn.status}")
        if posting.loan_id != int(txn.loan_id):
            by_loan[txn.loan_number].append(
                f"{txn_id} posted to {posting.loan.loan_number} instead"
            )
    for txn_id, posting in postings.items():
        if txn_id not in txns:
            by_loan[posting.loan.loan_number].append(
                f"{txn_id} posting ₹{posting.amount} has no DynamoDB transaction"
            )
    for loan_number in sorted(by_loan):
        dynamo_total = sum(
            (
                from_paise(t.amount_paise)
                for t in txns.values()
                if t.loan_number == loan_number and t.status == TxnStatus.POSTED
            ),
            Decimal("0.00"),
        )
        ledger_total = sum(
            (
                p.amount
                for p in postings.values()
                if p.loan.loan_number == loan_number and not p.reversed_at
            ),
            Decimal("0.00"),
        )
        report.differences.append(
            f"{loan_number}: DynamoDB posted ₹{dynamo_total}, ledger ₹{ledger_total}; "
            + "; ".join(by_loan[loan_number])
        )
    return report
