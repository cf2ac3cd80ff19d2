"""What payments adds to the admin's frame (registered in ``PaymentsConfig.ready()``): the
banner on every page while the ledger is in maintenance, and head office's start-page panel
of the posting queue (waiting, being posted, dead letters)."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from accounts.scoping import sees_everything

from .refdata import ledger_state
from .selectors import queue_counts

SWITCH_PERMISSION = "payments.change_ledgerswitch"
RETRY_PERMISSION = "payments.retry_posting"


def ledger_maintenance_banner(request) -> str:
    """While the ledger is in maintenance: payments are accepted, postings wait. Read from
    the cached switch (``ledger_state``), as every posting reads it."""
    state = ledger_state()
    if not state.maintenance:
        return ""
    link = ""
    if request.user.has_perm(SWITCH_PERMISSION):
        link = format_html(
            ' <a href="{}">Open the switch</a>', reverse("admin:payments_ledgerswitch_changelist")
        )
    return format_html(
        '<div class="page-banner" id="ledger-maintenance-banner" role="status">'
        "The ledger is in maintenance: payments are accepted and receipts issued, but they "
        "are posted to the loans only when it ends.{}{}</div>",
        f" Reason: {state.reason}." if state.reason else "",
        link,
    )


def sees_every_branch(user) -> bool:
    return sees_everything(user)


def queue_panel(request) -> str:
    context = {
        "counts": {status.lower(): count for status, count in queue_counts().items()},
        "queue_url": reverse("admin:payments_postingqueueentry_changelist"),
        "ledger": ledger_state(),
    }
    return render_to_string("payments/home/queue_panel.html", context, request=request)
