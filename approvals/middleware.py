"""Clears a user's cached approvals count when they change something."""

from __future__ import annotations

from .selectors import inbox_count_forget

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}


class InboxCountMiddleware:
    """After any request of a staff user that may change something (a submission, an
    approval), their admin header counts afresh instead of showing the kept count
    (``selectors.inbox_count_for_header``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.method not in SAFE_METHODS:
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated and user.is_staff:
                inbox_count_forget(user)
        return response
