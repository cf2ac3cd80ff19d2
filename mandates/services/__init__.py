"""Mandates: the lifecycle with maker-checker, the execution schedule, the daily
presentation to banking partners, and the results (payments, bounces, charges).

One module a seam: lifecycle, schedule, presentation, results. Every step can be repeated
after a crash (see presentation and results).
"""

from .lifecycle import (
    STOP_KINDS,
    mandate_activate,
    mandate_approve,
    mandate_create,
    mandate_registration_reject,
    mandate_resume,
    mandate_return,
    mandate_send_to_bank,
    mandate_stop_request,
    mandate_submit,
    mandate_update,
    mandates_expire,
)
from .presentation import (
    RUN_LEASE,
    execution_id_for,
    mandates_present_due,
    presentation_run_held_for,
)
from .results import (
    execution_result_apply,
    execution_result_deliver,
    execution_result_sync,
)
from .schedule import mandate_schedule_generate, next_working_day, presentations_reschedule

__all__ = [
    "RUN_LEASE",
    "STOP_KINDS",
    "execution_id_for",
    "execution_result_apply",
    "execution_result_deliver",
    "execution_result_sync",
    "mandate_activate",
    "mandate_approve",
    "mandate_create",
    "mandate_registration_reject",
    "mandate_resume",
    "mandate_return",
    "mandate_schedule_generate",
    "mandate_send_to_bank",
    "mandate_stop_request",
    "mandate_submit",
    "mandate_update",
    "mandates_expire",
    "mandates_present_due",
    "next_working_day",
    "presentation_run_held_for",
    "presentations_reschedule",
]
