"""The sections of a customer's admin page ("the customer at a glance").

Loans draws its own (the customer's loans, the loans they co-borrow or guarantee, the
notifications sent to them); apps above loans (mandates, payments) add theirs from their
``AppConfig.ready()``, so that loans never imports them::

    register_customer_panel("mandates", customer_mandates_panel, order=30)

A panel is ``fn(customer, user) -> {"template": ..., **context}`` or None (nothing to show,
e.g. the user may not see that kind of data). It reads through its app's selectors, which
apply the one scoping function, in a fixed number of queries whatever the customer holds.
A panel whose store is down says so in its own section; it never breaks the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from pynamodb.exceptions import PynamoDBException

from notifications.models import Channel
from notifications.selectors import notifications_to

from .models import LoanAccount
from .selectors import customer_co_borrowings, customer_loans

logger = logging.getLogger(__name__)

PanelFn = Callable[[Any, Any], dict[str, Any] | None]


@dataclass(frozen=True)
class CustomerPanel:
    name: str
    fn: PanelFn
    order: int


_panels: dict[str, CustomerPanel] = {}


def register_customer_panel(name: str, fn: PanelFn, *, order: int = 100) -> None:
    """Add (or replace: ``ready()`` may run twice) the section ``name`` of the customer's
    page; sections are shown by ``order``, then name."""
    _panels[name] = CustomerPanel(name, fn, order)


def customer_panels() -> list[CustomerPanel]:
    return sorted(_panels.values(), key=lambda p: (p.order, p.name))


def customer_panels_html(*, customer, user, request=None) -> list[tuple[str, SafeString]]:
    """Every registered section of ``customer``'s page for ``user``, rendered, in order."""
    rendered = []
    for panel in customer_panels():
        try:
            context = panel.fn(customer, user)
        except Exception:  # one broken section must not take the customer's page down
            logger.exception("customer panel %s failed for customer %s", panel.name, customer.pk)
            context = {
                "template": "admin/loans/customer/_panel_error.html",
                "title": panel.name.replace("_", " ").capitalize(),
            }
        if not context:
            continue
        context = dict(context)
        template = context.pop("template")
        html = render_to_string(template, {"customer": customer, **context}, request=request)
        rendered.append((panel.name, mark_safe(html)))  # noqa: S308 (our own templates)
    return rendered


# --- The sections loans draws itself (registered by LoansConfig.ready()) ----------------

RECORD_PAYMENT_PERMISSION = "desk.collect_payment"  # who may collect at the desk
NOTIFICATIONS_SHOWN = 10


def customer_loans_panel(customer, user) -> dict[str, Any]:
    """The customer's loans with their dues as stored on the loan (``dues_as_of``), each
    with a "Collect" link to the desk; then the loans they co-borrow or guarantee."""
    collect = reverse("desk:collect") if user.has_perm(RECORD_PAYMENT_PERMISSION) else None

    def row(loan) -> dict[str, Any]:
        active = loan.status == LoanAccount.Status.ACTIVE
        return {
            "loan": loan,
            "url": reverse("admin:loans_loanaccount_change", args=[loan.pk]),
            "collect_url": f"{collect}?loan={loan.loan_number}" if collect and active else None,
        }

    return {
        "template": "admin/loans/customer/_loans.html",
        "loans": [row(loan) for loan in customer_loans(customer=customer, user=user)],
        "co_borrowings": [
            {**row(co.loan), "co": co}
            for co in customer_co_borrowings(customer=customer, user=user)
        ],
    }


def customer_notifications_panel(customer, user) -> dict[str, Any]:
    """The latest messages sent to the customer's mobile and email (addresses masked)."""
    recipients = [(Channel.SMS, customer.mobile)]
    if customer.email:
        recipients.append((Channel.EMAIL, customer.email))
    try:
        rows, error = notifications_to(recipients=recipients, limit=NOTIFICATIONS_SHOWN), None
    except PynamoDBException:
        logger.warning("customer page: notifications unavailable", exc_info=True)
        rows, error = [], "The notifications store is unavailable; try again shortly."
    return {"template": "admin/loans/customer/_notifications.html", "rows": rows, "error": error}
