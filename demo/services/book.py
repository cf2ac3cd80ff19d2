"""The demo book at any scale: customers with bank accounts, loans, co-borrowers and
schedules, loaded with ``COPY`` in chunks (one transaction each)."""

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

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Branch
from loans.dues import bucket_for
from loans.models import (
    CoBorrower,
    Customer,
    CustomerBankAccount,
    Instalment,
    LoanAccount,
    LoanProduct,
)
from loans.schedule import PERIODS_PER_YEAR, build_schedule, due_dates, emi, instalment_count
from loans.services import NUMBER_SEQUENCES, loans_dues_refresh

from .catalogue import (
    BANK_ACCOUNT_COLUMNS,
    BANKS,
    BOUNCE_SHARE,
    BRANCH_CODES,
    BRANCHES,
    BUILDINGS,
    CHUNK_LOANS,
    CO_BORROWER_COLUMNS,
    CO_BORROWER_SHARE,
    CUSTOMER_COLUMNS,
    CUSTOMER_DOMAINS,
    DUE_DAYS,
    FIRST_NAMES,
    GUARANTOR_SHARE,
    HISTORY_DAYS,
    INSTALMENT_COLUMNS,
    LETTERS,
    LOAN_COLUMNS,
    MISSED_INSTALMENTS,
    PRODUCTS,
    RATE_SPREADS,
    RELATIONSHIPS,
    SCHEDULE_SAMPLE,
    STREETS,
    SURNAMES,
    WRITTEN_OFF_SHARE,
    BranchSpec,
    ProductSpec,
)

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
    if result.scheduled_loans:
        # the dues of the loans with a schedule, from their instalments (as the nightly does)
        loans_dues_refresh(as_of=generator.today)
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
        self.missed_weights = list(accumulate(w for _, w in MISSED_INSTALMENTS))
        self.missed_counts = [n for n, _ in MISSED_INSTALMENTS]
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
            dues = (None, zero, zero, zero, zero, 0, "CURRENT", None)
            written_off = day < year_ago and rng.random() < WRITTEN_OFF_SHARE
            status = "WRITTEN_OFF" if written_off else "ACTIVE"
            owed_principal, last_paid_on, last_paid = principal, None, zero
            if first_ordinal + index < schedule_sample:
                emi_amount, rows = build_schedule(
                    principal=principal,
                    annual_rate_percent=rate,
                    tenure_months=tenure,
                    frequency=product.frequency,
                    disbursed_on=disbursed_on,
                    due_day=due_day,
                )
                paid = self._paid_instalments([row.due_date for row in rows], written_off)
                interest = sum((row.interest for row in rows[paid:]), zero)
                owed_principal = sum((row.principal for row in rows[paid:]), zero)
                instalments.extend(
                    (
                        pk,
                        row.number,
                        row.due_date,
                        row.principal,
                        row.interest,
                        zero,
                        *((row.principal, row.interest) if k < paid else (zero, zero)),
                        zero,
                        "PAID" if k < paid else "DUE",
                    )
                    for k, row in enumerate(rows)
                )
                if paid:
                    last_paid_on = rows[paid - 1].due_date
                    last_paid = rows[paid - 1].principal + rows[paid - 1].interest
                if paid == len(rows) and not written_off:
                    status = "CLOSED"
                result.scheduled_loans += 1
            else:
                periods = instalment_count(tenure, product.frequency)
                emi_amount, interest = _emi(disbursed, rate, periods, product.frequency), zero
                dues = self._dues(
                    due_dates(disbursed_on, due_day, periods, product.frequency),
                    emi_amount,
                    principal * rate / 100 / PERIODS_PER_YEAR[product.frequency],
                    written_off=written_off,
                )
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
                    status,
                    owed_principal,
                    interest,
                    zero,
                    created_at,
                    created_at,
                    *dues,
                    last_paid,
                    last_paid_on,
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

    def _missed(self, fallen: int, *, written_off: bool) -> int:
        """How many of the ``fallen`` instalments the borrower has not paid, the latest
        ones (``MISSED_INSTALMENTS``; all of them, at least 4, for a loan written off)."""
        missed = min(fallen, self._pick(self.missed_weights, self.missed_counts))
        return min(fallen, max(missed, 4)) if written_off else missed

    def _paid_instalments(self, dates: list[date], written_off: bool) -> int:
        """The opening history of a loan with a schedule: the instalments fallen due
        before today were paid on time but for the last few missed (``_missed``), so
        that the book's buckets spread as a real one's do. Its paid amounts are in the
        instalments, as an imported book's opening balances are; the payments of today's
        demo activity (``demo.services.activity``) go through ingestion and posting."""
        fallen = bisect(dates, self.today - timedelta(days=1))  # a due today is not overdue
        return fallen - self._missed(fallen, written_off=written_off)

    def _dues(self, dates: list[date], emi_amount: Decimal, interest: Decimal, *, written_off):
        """Plausible dues of a loan without a schedule, as of today: some instalments of
        those fallen due missed (``MISSED_INSTALMENTS``; all of them, at least 4, for a
        loan written off), with a bounce charge on some. Columns as ``LOAN_COLUMNS``'
        dues, consistent with ``loans.dues`` (the bucket of the DPD)."""
        rng, today = self.rng, self.today
        fallen = bisect(dates, today - timedelta(days=1))  # a due today is not overdue
        missed = self._missed(fallen, written_off=written_off)
        upcoming = dates[fallen] if fallen < len(dates) else None
        next_due = (upcoming, emi_amount if upcoming else Decimal("0.00"))
        if not missed:
            return (*next_due, *(Decimal("0.00"),) * 3, 0, "CURRENT", today)
        dpd = (today - dates[fallen - missed]).days
        overdue_interest = min(emi_amount, interest.quantize(Decimal("0.01"))) * missed
        charges = sum(Decimal("590.00") for _ in range(missed) if rng.random() < BOUNCE_SHARE)
        return (
            *next_due,
            emi_amount * missed - overdue_interest,
            overdue_interest,
            charges or Decimal("0.00"),
            dpd,
            bucket_for(dpd),
            today,
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
