"""The roles (Django groups) and their permission sets, as data.

Patterns are ``app_label.codename`` with ``*`` as a wildcard. ``sync_roles`` is run by a
data migration (so a fresh database has the roles, exactly as defined) and, adding only,
after every ``migrate`` (so models added later join the sets, while permissions an
administrator removed from a role in the admin stay removed until the definition changes).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

LOAN_MASTER = ["customer", "customerbankaccount", "loanaccount", "coborrower"]

ROLES: dict[str, list[str]] = {
    "Branch Staff": [
        *(f"loans.{verb}_{model}" for model in LOAN_MASTER for verb in ("view", "add", "change")),
        "loans.view_instalment",
        "loans.request_customer_change",  # mobile, PAN, bank accounts: maker-checker
        "loans.view_loanproduct",
        "loans.view_bankingpartner",
        "accounts.view_branch",
        "mandates.view_*",
        "mandates.add_mandate",
        "mandates.change_mandate",
        "mandates.submit_mandate",
        "reconciliation.view_*",
        "reconciliation.*_deposit",  # DBS: branch staff record the day's deposits
        "payments.view_*",
        "payments.add_posting",  # record a payment (API through the session)
        "payments.add_bulkupload",  # upload a file of repayments, and import it
        "notifications.view_notificationtemplate",
        "desk.collect_payment",  # the branch desk: collect a payment, hand over a receipt
        "desk.view_deskreceipt",
    ],
    "Branch Manager": [
        "@Branch Staff",
        "loans.delete_coborrower",
        "loans.delete_customerbankaccount",
        "accounts.view_user",
        "mandates.approve_mandate",
        "mandates.request_mandate_stop",
        "loans.request_waiver",
        "loans.approve_customer_change",
        "loans.assign_collection_officer",  # who collects a loan (the collection sheet)
        "loans.view_loancharge",
        "reconciliation.submit_dcr",  # DCR: the branch manager submits, an area manager approves
        "reconciliation.submit_dbs",  # DBS: the branch manager submits, finance approves
        "reconciliation.build_dcr",
        "payments.view_*",
        "payments.request_reversal",
        "approvals.view_*",
        "audit.view_*",
        "imports.add_importrun",  # bring in their branch's customers, loans, mandates
        "imports.view_importrun",
    ],
    "Area Manager": [
        "@Branch Manager",
        "loans.approve_waiver",
        "reconciliation.approve_dcr",
        "accounts.view_area",
        "accounts.view_region",
    ],
    "Operations": [
        "loans.view_*",
        "loans.approve_customer_change",
        "loans.change_bankingpartner",
        "loans.add_bankingpartner",
        "loans.*_collectionaccount",
        "loans.*_loanproduct",
        "accounts.view_*",
        "mandates.*",
        "payments.view_*",
        "payments.*_ledgerswitch",
        "payments.retry_posting",  # send a dead-lettered posting back to the queue
        "payments.add_bulkupload",  # upload a file of repayments, and import it
        "approvals.view_*",
        "reconciliation.view_*",
        "notifications.*",
        "audit.view_*",
        "core.view_jobrun",  # the daily jobs' runs (head office only)
        "core.view_outboxmessage",  # the outbox: what waits to reach DynamoDB, and why
        "imports.add_importrun",  # bring a book in: branches, staff, customers, loans, mandates
        "imports.view_importrun",
    ],
    "Finance": [
        "loans.view_*",
        "loans.*_collectionaccount",
        "accounts.view_*",
        "payments.*",
        "approvals.view_*",
        "reconciliation.view_*",
        "reconciliation.approve_dbs",
        "reconciliation.build_dcr",
        "reconciliation.*_statementupload",
        "mandates.view_*",
        "audit.view_*",
        "core.view_jobrun",
    ],
    "Auditor": ["*.view_*"],
    "Admin": ["*.*"],
}


def expand(role: str, seen: frozenset[str] = frozenset()) -> list[str]:
    patterns = []
    for pattern in ROLES[role]:
        if pattern.startswith("@"):
            parent = pattern[1:]
            if parent in seen:
                raise ValueError(f"role {role!r} includes itself through {parent!r}")
            patterns.extend(expand(parent, seen | {role}))
        else:
            patterns.append(pattern)
    return patterns


def sync_roles(group_model, permission_model, *, replace: bool) -> None:
    permissions = list(permission_model.objects.select_related("content_type"))
    for role in ROLES:
        patterns = expand(role)
        wanted = [
            perm
            for perm in permissions
            if any(
                fnmatchcase(f"{perm.content_type.app_label}.{perm.codename}", p) for p in patterns
            )
        ]
        group, created = group_model.objects.get_or_create(name=role)
        if replace or created:
            group.permissions.set(wanted)
        else:
            group.permissions.add(*wanted)
