"""Helpers of the browser tests (Playwright on Debian's Chromium, see the root conftest)."""

from __future__ import annotations

from tests.factories import PASSWORD


def log_in(page, live_server, user) -> None:
    """Sign ``user`` in through the admin's login page, as a person does, in a session of
    their own: the cookies of the page's context (another user's session) are cleared
    first."""
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def fits_the_window(page) -> bool:
    """No sideways scrolling: neither the page nor a changelist's results (which the admin
    lets scroll on their own, beside the sidebar and the filters)."""
    return page.evaluate(
        """() => document.documentElement.scrollWidth <= window.innerWidth &&
        [...document.querySelectorAll('#changelist .results')].every(
            (el) => el.scrollWidth <= el.clientWidth)"""
    )
