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
A loan with a schedule starts with an opening history: the instalments fallen due were
paid but for the last few missed (most loans none), written into the instalments as an
imported book's opening balances are, so that DPD and buckets spread as a real book's do;
a loan paid to the end is CLOSED. ``ensure_demo_activity`` then adds what goes through the
real services: mandates in every state, NACH presentations with successes and bounces
(and their charges), recent payments, deposits and a bank statement.

Bulk loading bypasses model signals, so none of this is in the audit trail: the trail
records what staff change, and the demo set is fixture data. Money is Decimal throughout.
"""

from .activity import ActivityResult, demo_activity_present, ensure_demo_activity
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
    "ActivityResult",
    "demo_activity_present",
    "demo_counts",
    "demo_login_lines",
    "demo_present",
    "ensure_demo_activity",
    "ensure_master_data",
    "load_customers_and_loans",
]
