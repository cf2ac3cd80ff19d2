"""The admin header's "Approvals (n)" link (``templates/admin/base_site.html``).

All the work is done by ``approvals.selectors``.
"""

from __future__ import annotations

from django import template
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from approvals.selectors import inbox_count_for_header

register = template.Library()


@register.simple_tag(takes_context=True)
def approvals_link(context) -> str:
    """``Approvals (3) /`` for staff; nothing where the inbox is not routed (test URLconfs).
    The count is kept for a few seconds per user (``inbox_count_for_header``)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return ""
    try:
        url = reverse("approvals:inbox")
    except NoReverseMatch:
        return ""
    count = inbox_count_for_header(user)
    label = f"Approvals ({count})" if count else "Approvals"
    return format_html('<a href="{}" id="approvals-link">{}</a> / ', url, label)
