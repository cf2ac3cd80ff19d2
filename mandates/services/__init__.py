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
    mandate_import,
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
    PRESENTATION_JOB,
    RUN_LEASE,
    execution_id_for,
    mandates_present_due,
    presentation_run_held_for,
)
from .response_file import MAX_FILE_BYTES, ResultLine, response_file_read
from .results import (
    PartnerResult,
    execution_result_apply,
    execution_result_conflict,
    execution_result_deliver,
    execution_result_sync,
    execution_result_validate,
)
from .schedule import (
    bank_holiday_save,
    bank_holidays_delete,
    mandate_schedule_generate,
    next_working_day,
    presentations_reschedule,
)

__all__ = [
    "MAX_FILE_BYTES",
    "PRESENTATION_JOB",
    "RUN_LEASE",
    "STOP_KINDS",
    "PartnerResult",
    "ResultLine",
    "bank_holiday_save",
    "bank_holidays_delete",
    "execution_id_for",
    "execution_result_apply",
    "execution_result_conflict",
    "execution_result_deliver",
    "execution_result_sync",
    "execution_result_validate",
    "mandate_activate",
    "mandate_approve",
    "mandate_create",
    "mandate_import",
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
    "response_file_read",
]
