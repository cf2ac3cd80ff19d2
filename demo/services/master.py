"""The demo master data (idempotent by natural key): the hierarchy, staff logins,
products, partners and collection accounts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from decimal import Decimal

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.utils import timezone

from accounts.models import Area, Branch, Region, User
from loans.models import (
    BankingPartner,
    CollectionAccount,
    LoanProduct,
)

from .catalogue import (
    AREA_REGION,
    AREAS,
    BRANCH_CODES,
    BRANCHES,
    COLLECTION_ACCOUNTS,
    DEMO_PASSWORD,
    PARTNERS,
    PRODUCTS,
    REGIONS,
    ROLE_ORDER,
    STAFF,
    STAFF_DOMAIN,
)


def demo_present() -> bool:
    """Whether the demo set was loaded (any of its branches exists)."""
    return Branch.objects.filter(code__in=BRANCH_CODES).exists()


def demo_login_lines() -> list[str]:
    """One line per role: the demo usernames that exist and are active, and the password."""
    present = set(
        User.objects.filter(username__in=[s.username for s in STAFF], is_active=True).values_list(
            "username", flat=True
        )
    )
    lines = []
    for role in ROLE_ORDER:
        names = [s.username for s in STAFF if s.role == role and s.username in present]
        if names:
            lines.append(f"{role}: {', '.join(names)} / {DEMO_PASSWORD}")
    return lines


def _insert_missing(model, key: Callable[[models.Model], object], objs, existing) -> int:
    """Insert the objects whose natural key is not in ``existing``; return how many."""
    missing = [obj for obj in objs if key(obj) not in existing]
    model.objects.bulk_create(missing)
    return len(missing)


@transaction.atomic
def ensure_master_data() -> dict[str, int]:
    """Insert whatever master data is missing; return the number of rows added per kind."""
    added: dict[str, int] = {}

    def by_code(model, codes) -> dict[str, int]:
        return dict(model.objects.filter(code__in=codes).values_list("code", "id"))

    regions = by_code(Region, [c for c, _ in REGIONS])
    added["regions"] = _insert_missing(
        Region, lambda r: r.code, [Region(code=c, name=n) for c, n in REGIONS], regions
    )
    regions = by_code(Region, [c for c, _ in REGIONS])

    areas = by_code(Area, AREA_REGION)
    added["areas"] = _insert_missing(
        Area,
        lambda a: a.code,
        [Area(code=c, name=n, region_id=regions[r]) for c, n, r, _ in AREAS],
        areas,
    )
    areas = by_code(Area, AREA_REGION)

    branches = by_code(Branch, BRANCH_CODES)
    added["branches"] = _insert_missing(
        Branch,
        lambda b: b.code,
        [
            Branch(
                code=b.code,
                name=b.name,
                area_id=areas[b.area],
                state=b.state,
                cash_in_hand_limit=Decimal(b.cash_limit),
                cutoff_time=time(18, 0),
            )
            for b in BRANCHES
        ],
        branches,
    )
    branches = by_code(Branch, BRANCH_CODES)
    added["users"] = _ensure_staff(regions, areas, branches)

    products = by_code(LoanProduct, [p.code for p in PRODUCTS])
    added["products"] = _insert_missing(
        LoanProduct,
        lambda p: p.code,
        [
            LoanProduct(
                code=p.code,
                name=p.name,
                interest_rate=Decimal(p.rate),
                min_tenure_months=p.tenures[0],
                max_tenure_months=p.tenures[-1],
                emi_frequency=p.frequency,
                bounce_charge=Decimal(p.bounce_charge),
            )
            for p in PRODUCTS
        ],
        products,
    )

    partners = by_code(BankingPartner, [p[0] for p in PARTNERS])
    added["banking partners"] = _insert_missing(
        BankingPartner,
        lambda p: p.code,
        [
            BankingPartner(code=code, name=name, ifsc=ifsc, nach_utility_code=utility)
            for code, name, ifsc, utility in PARTNERS
        ],
        partners,
    )
    partners = by_code(BankingPartner, [p[0] for p in PARTNERS])
    partner_ifsc = {code: ifsc for code, _, ifsc, _ in PARTNERS}
    accounts = set(
        CollectionAccount.objects.filter(partner_id__in=partners.values()).values_list(
            "partner_id", "account_number"
        )
    )
    added["collection accounts"] = _insert_missing(
        CollectionAccount,
        lambda a: (a.partner_id, a.account_number),
        [
            CollectionAccount(
                partner_id=partners[code],
                account_name=account_name,
                account_number=number,
                ifsc=partner_ifsc[code],
            )
            for code, account_name, number in COLLECTION_ACCOUNTS
        ],
        accounts,
    )
    return added


def _ensure_staff(regions, areas, branches) -> int:
    existing = set(
        User.objects.filter(username__in=[s.username for s in STAFF]).values_list(
            "username", flat=True
        )
    )
    missing = [s for s in STAFF if s.username not in existing]
    if not missing:
        return 0
    # One hash for the one published password: 40 hashes would cost most of a minute.
    password = make_password(DEMO_PASSWORD)
    now = timezone.now()
    users = []
    for index, spec in enumerate(STAFF, start=1):
        if spec.username in existing:
            continue
        users.append(
            User(
                username=spec.username,
                first_name=spec.first_name,
                last_name=spec.last_name,
                email=f"{spec.username}@{STAFF_DOMAIN}",
                password=password,
                is_staff=True,
                is_active=True,
                date_joined=now,
                employee_code=f"SFL{index:04d}",
                mobile=f"9822{index:06d}",
                level=spec.level,
                home_branch_id=branches[spec.home] if spec.level == "BRANCH" else None,
                home_area_id=areas[spec.home] if spec.level == "AREA" else None,
                home_region_id=regions[spec.home] if spec.level == "REGION" else None,
            )
        )
    User.objects.bulk_create(users)
    ids = dict(
        User.objects.filter(username__in=[u.username for u in users]).values_list("username", "id")
    )
    groups = dict(Group.objects.filter(name__in=ROLE_ORDER).values_list("name", "id"))
    Membership = User.groups.through
    Membership.objects.bulk_create(
        Membership(user_id=ids[s.username], group_id=groups[s.role]) for s in missing
    )
    return len(users)
