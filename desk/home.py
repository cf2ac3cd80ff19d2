"""What the desk adds to the admin's start page (registered in ``DeskConfig.ready()``): for
the staff of a branch, the search that opens a loan to collect on (loan number or mobile)
and the way to the day's collection sheet."""

from __future__ import annotations

from django.template.loader import render_to_string

from accounts.models import User

COLLECT_PERMISSION = "desk.collect_payment"


def works_at_a_branch(user) -> bool:
    return user.level == User.Level.BRANCH


def desk_panel(request) -> str:
    return render_to_string("desk/home/desk_panel.html", {}, request=request)
