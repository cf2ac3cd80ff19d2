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

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from itertools import accumulate

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, models, transaction
from django.utils import timezone

from accounts.models import Area, Branch, Region, User
from loans.models import (
    BankingPartner,
    CoBorrower,
    CollectionAccount,
    Customer,
    CustomerBankAccount,
    Instalment,
    LoanAccount,
    LoanProduct,
)
from loans.schedule import build_schedule, emi, instalment_count
from loans.services import NUMBER_SEQUENCES

DEMO_PASSWORD = "Demo@2026"  # noqa: S105 - published on purpose: the demo logins
CUSTOMERS_PER_SCALE = 5_000
LOANS_PER_SCALE = 6_000
SCHEDULE_SAMPLE = 6_000
CHUNK_LOANS = 10_000
HISTORY_DAYS = 730  # disbursals over the last two years
LENDER = "Sangam Finance Ltd"
STAFF_DOMAIN = "sangamfinance.example"
CUSTOMER_DOMAINS = ("example.com", "example.net", "example.org")  # reserved: never delivered

# --- Master data ------------------------------------------------------------------------
# Tables as text: one row a line, columns separated by "|"; lists of names as words.


def _table(text: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines()]


def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


REGIONS = [("WEST", "West"), ("SOUTH", "South"), ("NORTH", "North")]
AREAS = [  # code, name, region, username of its area manager
    ("W-MH", "Western Maharashtra", "WEST", "area.west1"),
    ("W-GJ", "Gujarat", "WEST", "area.west2"),
    ("S-KA", "Karnataka", "SOUTH", "area.south1"),
    ("S-TN", "Tamil Nadu", "SOUTH", "area.south2"),
    ("N-UP", "Western Uttar Pradesh", "NORTH", "area.north1"),
    ("N-RJ", "Rajasthan", "NORTH", "area.north2"),
]


LOCALITIES = {
    code: _words(places, ", ")
    for code, places in _table("""
PUN01 | Shivajinagar, Kothrud, Hadapsar, Pimpri, Wakad
KOP01 | Rajarampuri, Shahupuri, Kasba Bawda, Ujalaiwadi
SUR01 | Varachha, Katargam, Adajan, Udhna
RJK01 | Kalawad Road, Mavdi, Gondal Road, Raiya
HBL01 | Keshwapur, Vidyanagar, Old Hubballi, Gokul Road
MYS01 | Saraswathipuram, Vijayanagar, Kuvempunagar, Bannimantap
CBE01 | Gandhipuram, Peelamedu, Singanallur, Saibaba Colony
MDU01 | Anna Nagar, K K Nagar, Thirunagar, Goripalayam
MRT01 | Shastri Nagar, Ganga Nagar, Begum Bridge, Partapur
AGR01 | Sanjay Place, Kamla Nagar, Shahganj, Dayalbagh
JAI01 | Mansarovar, Vaishali Nagar, Malviya Nagar, Sanganer
JDH01 | Sardarpura, Ratanada, Shastri Nagar, Paota
""")
}


@dataclass(frozen=True)
class BranchSpec:
    code: str
    name: str
    area: str
    state: str
    pincode: str
    cash_limit: int
    weight: float  # relative share of the customers
    localities: tuple[str, ...]

    @property
    def town(self) -> str:
        return self.name.split()[0]

    @property
    def slug(self) -> str:
        """``pune1``: the town and the branch's number in it, as in ``staff.pune1``."""
        return self.town.lower() + self.code[-1]


# code | name | area | state | PIN | cash-in-hand limit | relative share of the customers
BRANCHES = [
    BranchSpec(code, name, area, state, pin, int(limit), float(weight), LOCALITIES[code])
    for code, name, area, state, pin, limit, weight in _table("""
PUN01 | Pune Shivajinagar      | W-MH | Maharashtra   | 411005 | 500000 | 1.4
KOP01 | Kolhapur Rajarampuri   | W-MH | Maharashtra   | 416008 | 250000 | 0.8
SUR01 | Surat Varachha         | W-GJ | Gujarat       | 395006 | 400000 | 1.2
RJK01 | Rajkot Kalawad Road    | W-GJ | Gujarat       | 360005 | 300000 | 0.9
HBL01 | Hubballi Keshwapur     | S-KA | Karnataka     | 580023 | 250000 | 0.8
MYS01 | Mysuru Saraswathipuram | S-KA | Karnataka     | 570009 | 300000 | 0.9
CBE01 | Coimbatore Gandhipuram | S-TN | Tamil Nadu    | 641012 | 450000 | 1.2
MDU01 | Madurai Anna Nagar     | S-TN | Tamil Nadu    | 625020 | 300000 | 1.0
MRT01 | Meerut Shastri Nagar   | N-UP | Uttar Pradesh | 250004 | 300000 | 0.9
AGR01 | Agra Sanjay Place      | N-UP | Uttar Pradesh | 282002 | 300000 | 1.0
JAI01 | Jaipur Mansarovar      | N-RJ | Rajasthan     | 302020 | 500000 | 1.3
JDH01 | Jodhpur Sardarpura     | N-RJ | Rajasthan     | 342003 | 250000 | 0.8
""")
]
BRANCH_CODES = [b.code for b in BRANCHES]
AREA_REGION = {code: region for code, _, region, _ in AREAS}

FIRST_NAMES = {
    "WEST": _words(
        "Rahul Sachin Amit Prashant Sunil Vijay Ganesh Mahesh Sanjay Nilesh Hitesh Jignesh Ketan "
        "Bhavesh Mehul Nirav Priya Sneha Pooja Anjali Kavita Sunita Manisha Swati Rupali Hetal "
        "Dipti Komal Falguni Asha"
    ),
    "SOUTH": _words(
        "Ramesh Suresh Karthik Senthil Murugan Arun Prakash Venkatesh Manjunath Naveen Basavaraj "
        "Srinivas Harish Ganesan Raghu Lakshmi Divya Meena Kavya Revathi Saranya Shobha Geetha "
        "Anitha Padma Shwetha Deepa Vani Selvi Usha"
    ),
    "NORTH": _words(
        "Rajesh Anil Vikas Deepak Manoj Pankaj Rakesh Ajay Ravi Sandeep Mukesh Gaurav Rohit Naresh "
        "Dinesh Neha Pooja Sunita Rekha Anita Poonam Seema Meera Kiran Rani Suman Geeta Priyanka "
        "Jyoti Savita"
    ),
}
SURNAMES = {
    "WEST": _words(
        "Patil Jadhav Pawar Shinde Kulkarni Deshmukh Joshi Gaikwad Chavan More Kale Bhosale Patel "
        "Shah Desai Mehta Parmar Solanki Chauhan Rathod"
    ),
    "SOUTH": _words(
        "Gowda Shetty Hegde Rao Naik Reddy Iyer Pillai Nair Subramanian Krishnan Murthy Kumar Raj "
        "Selvam Pandian Balan Raman Kulkarni Patil"
    ),
    "NORTH": _words(
        "Sharma Verma Gupta Singh Yadav Agarwal Jain Chaudhary Tiwari Mishra Saini Meena Rathore "
        "Shekhawat Tyagi Tomar Goyal Bansal Kumar Choudhary"
    ),
}
STREETS = _words(
    "Main Road, Station Road, MG Road, Gandhi Chowk, Market Yard Road, Temple Street, "
    "Nehru Nagar, Ambedkar Road, Shivaji Path, Ring Road",
    ", ",
)
BUILDINGS = _words(
    "Shree Apartments, Sai Residency, Krishna Complex, Ganesh Niwas, Laxmi Heights, "
    "Om Sai Chawl, Green Park Society, Balaji Enclave",
    ", ",
)


@dataclass(frozen=True)
class StaffSpec:
    username: str
    first_name: str
    last_name: str
    role: str
    level: str
    home: str = ""  # the branch, area or region code, by level


# Branch staff and managers, two per branch in the order of BRANCHES; then the others.
_BRANCH_STAFF_NAMES = _words(
    "Snehal Kulkarni, Rohan Deshpande, Anita Jadhav, Vikram Patil, Hetal Patel, Chirag Shah, "
    "Bhavna Joshi, Nikhil Mehta, Shruti Hegde, Prakash Gowda, Kavya Rao, Manjunath Shetty, "
    "Divya Krishnan, Senthil Kumar, Revathi Pandian, Arun Selvam, Neha Tyagi, Amit Tomar, "
    "Pooja Agarwal, Rakesh Gupta, Priyanka Sharma, Vikas Rathore, Seema Bansal, Gaurav Shekhawat",
    ", ",
)
# username | role | level | home | name
_OTHER_STAFF = _table("""
area.west1   | Area Manager | AREA        | W-MH  | Sandeep Pawar
area.west2   | Area Manager | AREA        | W-GJ  | Jignesh Desai
area.south1  | Area Manager | AREA        | S-KA  | Raghu Murthy
area.south2  | Area Manager | AREA        | S-TN  | Lakshmi Iyer
area.north1  | Area Manager | AREA        | N-UP  | Rajesh Verma
area.north2  | Area Manager | AREA        | N-RJ  | Sunita Choudhary
region.west  | Area Manager | REGION      | WEST  | Mahesh Bhosale
region.south | Area Manager | REGION      | SOUTH | Venkatesh Reddy
region.north | Area Manager | REGION      | NORTH | Anil Saini
ops1         | Operations   | HEAD_OFFICE |       | Kiran Nair
ops2         | Operations   | HEAD_OFFICE |       | Farhan Qureshi
finance1     | Finance      | HEAD_OFFICE |       | Meera Subramanian
finance2     | Finance      | HEAD_OFFICE |       | Ajay Jain
auditor1     | Auditor      | HEAD_OFFICE |       | Geeta Mishra
auditor2     | Auditor      | HEAD_OFFICE |       | Harish Pillai
admin1       | Admin        | HEAD_OFFICE |       | Rohit Yadav
""")


def _staff() -> list[StaffSpec]:
    staff = []
    names = iter(name.split() for name in _BRANCH_STAFF_NAMES)
    for branch in BRANCHES:
        for role, prefix in (("Branch Staff", "staff"), ("Branch Manager", "manager")):
            first, last = next(names)
            staff.append(
                StaffSpec(f"{prefix}.{branch.slug}", first, last, role, "BRANCH", branch.code)
            )
    for username, role, level, home, name in _OTHER_STAFF:
        first, last = name.split()
        staff.append(StaffSpec(username, first, last, role, level, home))
    return staff


STAFF = _staff()
ROLE_ORDER = [
    "Branch Staff",
    "Branch Manager",
    "Area Manager",
    "Operations",
    "Finance",
    "Auditor",
    "Admin",
]


@dataclass(frozen=True)
class ProductSpec:
    code: str
    name: str
    rate: str
    frequency: str
    tenures: tuple[int, ...]  # months, from the shortest to the longest allowed
    amount: tuple[int, int, int]  # smallest, largest, step (rupees)
    bounce_charge: str
    weight: float  # relative share of the loans
    partly_disbursed: float = 0.0  # share disbursed in tranches, less than sanctioned


PRODUCTS = [
    ProductSpec(
        code="JLG",
        name="Joint liability group loan",
        rate="23.50",
        frequency="FORTNIGHTLY",
        tenures=(12, 18, 24),
        amount=(20_000, 60_000, 5_000),
        bounce_charge="250.00",
        weight=30,
    ),
    ProductSpec(
        code="TWL",
        name="Two-wheeler loan",
        rate="17.00",
        frequency="MONTHLY",
        tenures=(12, 18, 24, 36),
        amount=(45_000, 150_000, 1_000),
        bounce_charge="500.00",
        weight=20,
    ),
    ProductSpec(
        code="PL",
        name="Personal loan",
        rate="21.00",
        frequency="MONTHLY",
        tenures=(12, 24, 36, 48),
        amount=(50_000, 500_000, 5_000),
        bounce_charge="500.00",
        weight=20,
    ),
    ProductSpec(
        code="MSME",
        name="Small business loan",
        rate="19.50",
        frequency="MONTHLY",
        tenures=(12, 24, 36, 48, 60),
        amount=(100_000, 1_500_000, 10_000),
        bounce_charge="750.00",
        weight=22,
        partly_disbursed=0.15,
    ),
    ProductSpec(
        code="LAP",
        name="Loan against property",
        rate="14.00",
        frequency="MONTHLY",
        tenures=(60, 84, 120, 180),
        amount=(500_000, 5_000_000, 50_000),
        bounce_charge="1000.00",
        weight=8,
        partly_disbursed=0.25,
    ),
]
# code | name | IFSC | NACH utility code
PARTNERS = _table("""
hdfc  | HDFC Bank  | HDFC0000060 | HDFC00000000012345
icici | ICICI Bank | ICIC0000104 | ICIC00000000067890
""")
# partner | account name | account number
COLLECTION_ACCOUNTS = _table(f"""
hdfc  | {LENDER} Collections West  | 50200012345671
hdfc  | {LENDER} Collections South | 50200012345688
hdfc  | {LENDER} Collections North | 50200012345695
icici | {LENDER} NACH Pool         | 000405012345
icici | {LENDER} Cash Deposits     | 000405012352
""")
# name | IFSC prefix | account number length | weight
BANKS = [
    (name, prefix, int(length), int(weight))
    for name, prefix, length, weight in _table("""
State Bank of India  | SBIN | 11 | 30
HDFC Bank            | HDFC | 14 | 14
ICICI Bank           | ICIC | 12 | 12
Axis Bank            | UTIB | 15 | 8
Bank of Baroda       | BARB | 14 | 8
Canara Bank          | CNRB | 13 | 7
Punjab National Bank | PUNB | 16 | 7
Union Bank of India  | UBIN | 15 | 6
Kotak Mahindra Bank  | KKBK | 10 | 4
Bank of Maharashtra  | MAHB | 11 | 4
""")
]
RELATIONSHIPS = [
    ("SPOUSE", 50),
    ("PARENT", 14),
    ("SIBLING", 14),
    ("CHILD", 6),
    ("BUSINESS_PARTNER", 10),
    ("OTHER", 6),
]
CO_BORROWER_SHARE = 0.18
GUARANTOR_SHARE = 0.05
WRITTEN_OFF_SHARE = 0.02  # of the loans disbursed over a year ago
DUE_DAYS = (2, 5, 5, 7, 10, 10, 15, 20)
RATE_SPREADS = ("-1.00", "-0.50", "0.00", "0.00", "0.50", "1.00", "1.50")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# COPY columns (model field names), in the order of the generated rows.
CUSTOMER_COLUMNS = _words(
    "id customer_number name mobile email pan date_of_birth address branch created_at"
)
BANK_ACCOUNT_COLUMNS = _words(
    "customer holder_name bank_name account_number ifsc account_type is_primary"
)
LOAN_COLUMNS = _words(
    "id loan_number customer product branch sanctioned_amount disbursed_amount interest_rate "
    "tenure_months emi_amount due_day disbursed_on status outstanding_principal "
    "outstanding_interest outstanding_charges created_at updated_at"
)
CO_BORROWER_COLUMNS = _words("loan customer relationship role")
INSTALMENT_COLUMNS = _words(
    "loan number due_date principal_due interest_due charges_due principal_paid interest_paid "
    "charges_paid status"
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


# --- Customers and loans ----------------------------------------------------------------


@dataclass
class DemoCounts:
    customers: int
    loans: int


@dataclass
class LoadResult:
    customers: int = 0
    bank_accounts: int = 0
    loans: int = 0
    scheduled_loans: int = 0
    instalments: int = 0
    co_borrowers: int = 0


@dataclass
class _Branch:
    id: int
    spec: BranchSpec
    region: str
    customer_ids: array = field(default_factory=lambda: array("q"))
    customer_days: array = field(default_factory=lambda: array("l"))  # date ordinals


@dataclass(frozen=True)
class _Product:
    id: int
    spec: ProductSpec
    rate: Decimal
    frequency: str
    tenures: tuple[int, ...]


def demo_counts() -> DemoCounts:
    branch_ids = list(Branch.objects.filter(code__in=BRANCH_CODES).values_list("id", flat=True))
    return DemoCounts(
        customers=Customer.objects.filter(branch_id__in=branch_ids).count(),
        loans=LoanAccount.objects.filter(branch_id__in=branch_ids).count(),
    )


def load_customers_and_loans(
    *,
    customers: int,
    loans: int,
    seed: int,
    schedule_sample: int = SCHEDULE_SAMPLE,
    progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Add ``customers`` customers and ``loans`` loans to the demo branches, in chunks of
    one transaction each; ``progress`` is called with the rows added after each chunk."""
    before = demo_counts()
    branches = _branches()
    products = _products()
    if loans and not customers and before.customers == 0:
        raise ValueError("loans need customers: the demo branches have none")
    if loans:
        _load_pool(branches)
    rng = random.Random(f"{seed}:{before.customers}:{before.loans}")
    chunks = max(1, math.ceil(max(loans, customers) / CHUNK_LOANS))
    result = LoadResult()
    generator = _Generator(rng, branches, products, timezone.localdate())
    for k in range(chunks):
        n_customers = customers * (k + 1) // chunks - customers * k // chunks
        n_loans = loans * (k + 1) // chunks - loans * k // chunks
        with transaction.atomic(), connection.cursor() as cursor:
            generator.chunk(
                cursor.cursor,
                k,
                chunks,
                n_customers,
                n_loans,
                first_ordinal=before.loans + result.loans,
                schedule_sample=schedule_sample,
                result=result,
            )
        if progress:
            progress(n_customers + n_loans)
    analyse()
    return result


def analyse() -> None:
    """Fresh planner statistics (the admin's estimated counts read them); VACUUM as well
    where possible, so that index-only scans need not visit the table."""
    tables = [
        m._meta.db_table
        for m in (Customer, CustomerBankAccount, LoanAccount, CoBorrower, Instalment)
    ]
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"{command} {connection.ops.quote_name(table)}")


def _branches() -> list[_Branch]:
    specs = {b.code: b for b in BRANCHES}
    rows = Branch.objects.filter(code__in=BRANCH_CODES).values_list(
        "id", "code", "area__region__code"
    )
    branches = [_Branch(id=pk, spec=specs[code], region=region) for pk, code, region in rows]
    if len(branches) != len(BRANCHES):
        raise ValueError("the demo branches are missing: load the master data first")
    return sorted(branches, key=lambda b: BRANCH_CODES.index(b.spec.code))


def _products() -> list[_Product]:
    specs = {p.code: p for p in PRODUCTS}
    products = []
    for product in LoanProduct.objects.filter(code__in=specs):
        spec = specs[product.code]
        tenures = tuple(
            t for t in spec.tenures if product.min_tenure_months <= t <= product.max_tenure_months
        ) or (product.min_tenure_months,)
        products.append(
            _Product(product.id, spec, product.interest_rate, product.emi_frequency, tenures)
        )
    if len(products) != len(PRODUCTS):
        raise ValueError("the demo loan products are missing: load the master data first")
    return sorted(products, key=lambda p: p.spec.code)


def _load_pool(branches: list[_Branch]) -> None:
    """The existing customers of each branch, for repeat loans and co-borrowers."""
    by_id = {b.id: b for b in branches}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, branch_id, (created_at AT TIME ZONE %s)::date "  # noqa: S608 - a model's table
            f"FROM {Customer._meta.db_table} WHERE branch_id = ANY(%s) ORDER BY id",
            [timezone.get_current_timezone_name(), list(by_id)],
        )
        while rows := cursor.fetchmany(50_000):
            for pk, branch_id, created in rows:
                branch = by_id[branch_id]
                branch.customer_ids.append(pk)
                branch.customer_days.append(created.toordinal())


@lru_cache(maxsize=200_000)
def _emi(principal: int, rate: Decimal, periods: int, frequency: str) -> Decimal:
    return emi(Decimal(principal), rate, periods, frequency)


def _copy(cursor, model, fields: list[str], rows: Iterable[tuple]) -> int:
    """``COPY`` rows into a model's table; ``fields`` are model field names."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
    count = 0
    with cursor.copy(f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _allocate(cursor, kind: str, model, n: int) -> list[tuple[str, int, int]]:
    """``n`` business numbers (from the sequence ``loans.services`` uses) and primary keys."""
    if n == 0:
        return []
    prefix, sequence = NUMBER_SEQUENCES[kind]
    cursor.execute(
        "SELECT nextval(%s), nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
        [sequence, model._meta.db_table, n],
    )
    return [(f"{prefix}{value:010d}", value, pk) for value, pk in sorted(cursor.fetchall())]


def _pan(number: int, surname: str, rng: random.Random) -> str:
    """A well-formed individual PAN (4th letter P, 5th the surname's initial), unique per
    customer number below 175,760,000: the number's blocks of 10,000 map one-to-one onto
    the first three letters."""
    block, digits = divmod(number, 10_000)
    x = (block * 7919 + 1234) % 17_576  # 7919 is prime to 26**3: a permutation
    letters = LETTERS[x // 676] + LETTERS[x // 26 % 26] + LETTERS[x % 26]
    return f"{letters}P{surname[0]}{digits:04d}{rng.choice(LETTERS)}"


def _mobile(number: int, rng: random.Random) -> str:
    """A 10-digit mobile starting 6 to 9, unique per customer number below 10**9."""
    return f"{rng.choice('9998877766')}{(number * 7_654_321 + 104_729) % 10**9:09d}"


class _Generator:
    def __init__(self, rng, branches: list[_Branch], products: list[_Product], today: date):
        self.rng = rng
        self.branches = branches
        self.branch_weights = list(accumulate(b.spec.weight for b in branches))
        self.products = products
        self.product_weights = list(accumulate(p.spec.weight for p in products))
        self.bank_weights = list(accumulate(b[3] for b in BANKS))
        self.relationship_weights = list(accumulate(w for _, w in RELATIONSHIPS))
        self.relationships = [r for r, _ in RELATIONSHIPS]
        self.today = today
        self.first_day = today.toordinal() - HISTORY_DAYS
        self.tz = timezone.get_current_timezone()
        self.now = timezone.now()

    def _pick(self, cum_weights, items):
        return items[bisect(cum_weights, self.rng.random() * cum_weights[-1])]

    def _working_day(self, ordinal: int) -> int:
        ordinal = min(ordinal, self.today.toordinal())
        return ordinal - 1 if date.fromordinal(ordinal).weekday() == 6 else ordinal  # Sunday

    def _at(self, ordinal: int, start_hour: int, end_hour: int) -> datetime:
        minutes = self.rng.randrange((end_hour - start_hour) * 60)
        moment = datetime.combine(
            date.fromordinal(ordinal), time(start_hour + minutes // 60, minutes % 60), self.tz
        )
        return min(moment, self.now)

    def chunk(
        self,
        cursor,
        k,
        chunks,
        n_customers,
        n_loans,
        *,
        first_ordinal,
        schedule_sample,
        result: LoadResult,
    ) -> None:
        """One chunk covers a slice of the two years, so numbers rise with the dates."""
        span = HISTORY_DAYS
        start = self.first_day + span * k // chunks
        end = max(start, self.first_day + span * (k + 1) // chunks - 1)
        new_customers = self._customers(cursor, n_customers, start, end, result)
        self._loans(
            cursor, new_customers, n_loans, start, end, first_ordinal, schedule_sample, result
        )

    def _customers(self, cursor, n, start, end, result) -> list[tuple[int, _Branch, int]]:
        rng = self.rng
        days = sorted(self._working_day(rng.randint(start, end)) for _ in range(n))
        drafts = [(day, self._pick(self.branch_weights, self.branches)) for day in days]
        numbers = _allocate(cursor, "customer", Customer, n)
        customers, accounts, created = [], [], []
        today = self.today
        for (day, branch), (customer_number, value, pk) in zip(drafts, numbers, strict=True):
            first = rng.choice(FIRST_NAMES[branch.region])
            last = rng.choice(SURNAMES[branch.region])
            name = f"{first} {last}"
            spec = branch.spec
            address = (
                f"{rng.randint(1, 250)}, {rng.choice(BUILDINGS)}, {rng.choice(STREETS)}, "
                f"{rng.choice(spec.localities)}, {spec.town}, {spec.state} {spec.pincode}"
            )
            born = today - timedelta(days=rng.randint(22 * 365, 60 * 365))
            customers.append(
                (
                    pk,
                    customer_number,
                    name,
                    _mobile(value, rng),
                    f"{first}.{last}{value % 1000}@{rng.choice(CUSTOMER_DOMAINS)}".lower(),
                    _pan(value, last.upper(), rng),
                    born,
                    address,
                    branch.id,
                    self._at(day, 10, 13),
                )
            )
            bank, ifsc_prefix, length, _ = self._pick(self.bank_weights, BANKS)
            accounts.append(
                (
                    pk,
                    name,
                    bank,
                    f"{rng.randint(1, 9)}{rng.randrange(10 ** (length - 1)):0{length - 1}d}",
                    f"{ifsc_prefix}0{rng.randrange(1, 10**6):06d}",
                    "CURRENT" if rng.random() < 0.08 else "SAVINGS",
                    True,
                )
            )
            created.append((pk, branch, day))
        result.customers += _copy(
            cursor,
            Customer,
            CUSTOMER_COLUMNS,
            customers,
        )
        result.bank_accounts += _copy(
            cursor,
            CustomerBankAccount,
            BANK_ACCOUNT_COLUMNS,
            accounts,
        )
        for pk, branch, day in created:
            branch.customer_ids.append(pk)
            branch.customer_days.append(day)
        return created

    def _repeat_borrower(self, day: int) -> tuple[int, _Branch, int]:
        """An existing customer who became one at least a month before ``day``."""
        rng = self.rng
        for _ in range(12):
            branch = self._pick(self.branch_weights, self.branches)
            if not branch.customer_ids:
                continue
            i = rng.randrange(len(branch.customer_ids))
            if branch.customer_days[i] <= day - 30:
                return branch.customer_ids[i], branch, day
        branch = next((b for b in self.branches if b.customer_ids), None)  # a young book
        if branch is None:
            raise ValueError("loans need customers: no demo customer exists yet")
        i = rng.randrange(len(branch.customer_ids))
        return branch.customer_ids[i], branch, max(day, branch.customer_days[i])

    def _loans(
        self, cursor, new_customers, n, start, end, first_ordinal, schedule_sample, result
    ) -> None:
        rng = self.rng
        drafts = []
        for pk, branch, day in new_customers[:n]:
            drafts.append((self._working_day(day + rng.choice((0, 0, 1, 2, 3, 5))), pk, branch))
        for _ in range(n - len(drafts)):
            pk, branch, day = self._repeat_borrower(rng.randint(start, end))
            drafts.append((self._working_day(day), pk, branch))
        drafts.sort(key=lambda d: (d[0], d[1]))
        numbers = _allocate(cursor, "loan", LoanAccount, n)
        loans, co_borrowers, instalments = [], [], []
        zero = Decimal("0.00")
        year_ago = self.today.toordinal() - 365
        for index, ((day, customer_id, branch), (loan_number, _, pk)) in enumerate(
            zip(drafts, numbers, strict=True)
        ):
            product = self._pick(self.product_weights, self.products)
            spec = product.spec
            low, high, step = spec.amount
            u = rng.random()
            sanctioned = low + int((high - low) * u * u / step) * step
            disbursed = sanctioned
            if rng.random() < spec.partly_disbursed:
                disbursed = max(low, int(sanctioned * rng.uniform(0.6, 0.9) / step) * step)
            rate = product.rate + Decimal(rng.choice(RATE_SPREADS))
            tenure = rng.choice(product.tenures)
            due_day = rng.choice(DUE_DAYS)
            disbursed_on = date.fromordinal(day)
            principal = Decimal(disbursed)
            if first_ordinal + index < schedule_sample:
                emi_amount, rows = build_schedule(
                    principal=principal,
                    annual_rate_percent=rate,
                    tenure_months=tenure,
                    frequency=product.frequency,
                    disbursed_on=disbursed_on,
                    due_day=due_day,
                )
                interest = sum((row.interest for row in rows), zero)
                instalments.extend(
                    (
                        pk,
                        row.number,
                        row.due_date,
                        row.principal,
                        row.interest,
                        zero,
                        zero,
                        zero,
                        zero,
                        "DUE",
                    )
                    for row in rows
                )
                result.scheduled_loans += 1
            else:
                periods = instalment_count(tenure, product.frequency)
                emi_amount, interest = _emi(disbursed, rate, periods, product.frequency), zero
            written_off = day < year_ago and rng.random() < WRITTEN_OFF_SHARE
            created_at = self._at(day, 13, 18)
            loans.append(
                (
                    pk,
                    loan_number,
                    customer_id,
                    product.id,
                    branch.id,
                    Decimal(sanctioned),
                    principal,
                    rate,
                    tenure,
                    emi_amount,
                    due_day,
                    disbursed_on,
                    "WRITTEN_OFF" if written_off else "ACTIVE",
                    principal,
                    interest,
                    zero,
                    created_at,
                    created_at,
                )
            )
            co_borrowers.extend(self._co_borrowers(pk, customer_id, branch, spec.code))
        result.loans += _copy(
            cursor,
            LoanAccount,
            LOAN_COLUMNS,
            loans,
        )
        result.co_borrowers += _copy(
            cursor,
            CoBorrower,
            CO_BORROWER_COLUMNS,
            co_borrowers,
        )
        result.instalments += _copy(
            cursor,
            Instalment,
            INSTALMENT_COLUMNS,
            instalments,
        )

    def _co_borrowers(self, loan_id, borrower_id, branch: _Branch, product_code: str):
        """A co-borrower on some loans (a guarantor on a few), from the same branch."""
        rng = self.rng
        wanted = []
        if rng.random() < CO_BORROWER_SHARE:
            relationship = self._pick(self.relationship_weights, self.relationships)
            if relationship == "BUSINESS_PARTNER" and product_code != "MSME":
                relationship = "SPOUSE"
            wanted.append((relationship, "CO_BORROWER"))
        if rng.random() < GUARANTOR_SHARE:
            wanted.append((rng.choice(("PARENT", "SIBLING", "OTHER")), "GUARANTOR"))
        ids = branch.customer_ids
        taken = {borrower_id}
        rows = []
        for relationship, role in wanted:
            if len(ids) <= len(taken):
                break
            customer_id = borrower_id
            while customer_id in taken:
                customer_id = ids[rng.randrange(len(ids))]
            taken.add(customer_id)
            rows.append((loan_id, customer_id, relationship, role))
        return rows
