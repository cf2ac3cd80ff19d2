"""What approvals adds to the admin's start page (registered in ``ApprovalsConfig.ready()``):
the inbox, with its count and the longest-waiting entries, for whoever decides requests."""

from __future__ import annotations

from django.template.loader import render_to_string

from .selectors import inbox_count, inbox_entries

START_ENTRIES = 5
VIEW_PERMISSION = "approvals.view_approvalrequest"


def inbox_panel(request) -> str:
    user = request.user
    entries = inbox_entries(user)
    context = {
        "entries": entries[:START_ENTRIES],
        "count": inbox_count(user),
    }
    return render_to_string("approvals/home/inbox_panel.html", context, request=request)
