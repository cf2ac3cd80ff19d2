"""The demo data set: a small Indian NBFC and, at any scale, its customers and loans.

Master data (idempotent by natural key; rows that exist are left as they are):
3 regions, 6 areas, 12 branches, 40 staff in every role with their place in the
hierarchy, 5 loan products, 2 banking partners with collection accounts. Every demo
login has the password ``DEMO_PASSWORD``.

Customers (each with a primary bank account) and loan accounts (some with
co-borrowers) are added in chunks, one transaction each, with ``COPY``: customer and
loan numbers come from the same Postgres sequences as ``loans.services`` in bulk, and so
do the primary keys. The repayment schedule (``loans.schedule.build_schedule``) is built
for the first ``schedule_sample`` demo loans; a loan without one carries its EMI
(``loans.schedule.emi``) and owes its disbursed principal, with no interest booked yet.
No payments are invented: every instalment is DUE, which the payment engine changes.

Bulk loading bypasses model signals, so none of this is in the audit trail: the trail
records what staff change, and the demo set is fixture data. Money is Decimal throughout.
"""

from .book import demo_counts, load_customers_and_loans
from .catalogue import (
    BRANCH_CODES,
    CUSTOMERS_PER_SCALE,
    DEMO_PASSWORD,
    LOANS_PER_SCALE,
    ROLE_ORDER,
    SCHEDULE_SAMPLE,
    STAFF,
)
from .master import demo_login_lines, demo_present, ensure_master_data

__all__ = [
    "BRANCH_CODES",
    "CUSTOMERS_PER_SCALE",
    "DEMO_PASSWORD",
    "LOANS_PER_SCALE",
    "ROLE_ORDER",
    "SCHEDULE_SAMPLE",
    "STAFF",
    "demo_counts",
    "demo_login_lines",
    "demo_present",
    "ensure_master_data",
    "load_customers_and_loans",
]
