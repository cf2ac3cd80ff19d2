"""Template tags of the payments screens, and the loan page's payments section (a tag, so
that the loans app never imports payments: its template only loads this library)."""

from __future__ import annotations

import logging

from django import template
from django.urls import reverse
from pynamodb.exceptions import PynamoDBException

from core.errors import ApplicationError

from .. import selectors

register = template.Library()
logger = logging.getLogger(__name__)

VIEW_PERMISSION = "payments.view_posting"
LOAN_PAGE_ROWS = 10


@register.inclusion_tag("admin/payments/_loan_payments.html", takes_context=True)
def loan_payments(context, loan, limit: int = LOAN_PAGE_ROWS) -> dict:
    """The loan's latest transactions from DynamoDB and its postings, for whoever may see
    payments; a DynamoDB outage shows a note instead of the transactions."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if loan is None or getattr(loan, "pk", None) is None or user is None:
        return {"show": False}
    if not user.has_perm(VIEW_PERMISSION):
        return {"show": False}
    # late: admin.py defines proxy models
    from ..admin import rows_with_links, transaction_browser_url

    rows, more, error = [], False, None
    try:
        page = selectors.transactions_for_loan(loan=loan, user=user, limit=limit)
        rows, more = rows_with_links(page.rows, user), page.next_cursor is not None
    except ApplicationError as exc:
        error = str(exc)
    except PynamoDBException:
        logger.warning("loan page: DynamoDB failed for %s", loan.loan_number, exc_info=True)
        error = "The payments store (DynamoDB) is unavailable; transactions cannot be shown now."
    changelist = reverse("admin:payments_posting_changelist")
    return {
        "show": True,
        "loan": loan,
        "rows": rows,
        "more": more,
        "error": error,
        "browser_url": transaction_browser_url(loan_number=loan.loan_number),
        "postings": selectors.postings_for_loan(loan=loan, user=user, limit=limit),
        "postings_url": f"{changelist}?q={loan.loan_number}",
    }
