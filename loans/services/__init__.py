"""Every write to loan master data goes through these services. One module a seam: master
(customers, loans, schedules, numbers), dues_refresh (a loan's balances and dues, and
every loan's nightly), charges (raised, waived through maker-checker), customer_change
(mobile, PAN and bank accounts through maker-checker), bulk (a book's new loans at once,
with COPY).
"""

from ..exceptions import ChargeNotWaivable, CollectionOfficerRefused
from .bulk import NewLoan, loan_accounts_bulk_add
from .charges import APPROVAL_KINDS as CHARGE_KINDS
from .charges import loan_charge_raise, loan_charge_waive, loan_charge_waiver_request
from .customer_change import APPROVAL_KINDS as CUSTOMER_CHANGE_KINDS
from .customer_change import (
    BANK_FIELDS,
    CUSTOMER_CHANGE,
    GUARDED_FIELDS,
    Change,
    customer_change_apply,
    customer_change_check,
    customer_change_describe,
    customer_change_request,
)
from .dues_refresh import (
    BALANCE_FIELDS,
    DERIVED_FIELDS,
    DUES_BATCH,
    DUES_FIELDS,
    DUES_JOB,
    DUES_LEASE,
    loan_dues_refresh,
    loan_dues_set,
    loans_dues_daily,
    loans_dues_held_for,
    loans_dues_refresh,
)
from .master import (
    ASSIGN_COLLECTION_OFFICER,
    NUMBER_SEQUENCES,
    customer_bank_account_add,
    customer_create,
    customer_update,
    loan_account_create,
    loan_co_borrower_add,
    loan_schedule_generate,
    loan_schedule_set,
    loan_update,
    next_business_number,
)

# The approval kinds of this app, registered by LoansConfig.ready().
APPROVAL_KINDS = {**CHARGE_KINDS, **CUSTOMER_CHANGE_KINDS}

__all__ = [
    "APPROVAL_KINDS",
    "ASSIGN_COLLECTION_OFFICER",
    "BALANCE_FIELDS",
    "BANK_FIELDS",
    "CUSTOMER_CHANGE",
    "DERIVED_FIELDS",
    "DUES_BATCH",
    "DUES_FIELDS",
    "DUES_JOB",
    "DUES_LEASE",
    "GUARDED_FIELDS",
    "NUMBER_SEQUENCES",
    "Change",
    "ChargeNotWaivable",
    "CollectionOfficerRefused",
    "NewLoan",
    "customer_bank_account_add",
    "customer_change_apply",
    "customer_change_check",
    "customer_change_describe",
    "customer_change_request",
    "customer_create",
    "customer_update",
    "loan_account_create",
    "loan_accounts_bulk_add",
    "loan_charge_raise",
    "loan_charge_waive",
    "loan_charge_waiver_request",
    "loan_co_borrower_add",
    "loan_dues_refresh",
    "loan_dues_set",
    "loan_schedule_generate",
    "loan_schedule_set",
    "loan_update",
    "loans_dues_daily",
    "loans_dues_held_for",
    "loans_dues_refresh",
    "next_business_number",
]
