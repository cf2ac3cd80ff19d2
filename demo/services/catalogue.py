"""The demo data set's catalogue: regions, areas, branches, staff, products, partners,
names and the shares the generator draws from."""

from __future__ import annotations

from dataclasses import dataclass

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
    "outstanding_interest outstanding_charges created_at updated_at next_due_date "
    "next_due_amount overdue_principal overdue_interest overdue_charges dpd bucket dues_as_of "
    "last_payment_amount last_payment_date"
)
# Loans without a schedule get dues of their own so that the loan list's bucket filter and
# DPD sort measure something: (instalments missed, weight), about 78 % current, 10 % in
# SMA-0, 5 % SMA-1, 3 % SMA-2, 4 % NPA (as many as have fallen due, at most 6).
MISSED_INSTALMENTS = ((0, 78), (1, 10), (2, 5), (3, 3), (6, 4))
BOUNCE_SHARE = 0.5  # of the missed instalments that carry a bounce charge (plus GST)
CO_BORROWER_COLUMNS = _words("loan customer relationship role")
INSTALMENT_COLUMNS = _words(
    "loan number due_date principal_due interest_due charges_due principal_paid interest_paid "
    "charges_paid status"
)
