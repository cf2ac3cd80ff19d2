"""Loans with their terms, co-borrowers and schedule: generated from the terms by ``loans``'
schedule, or their own from a second file staged in Postgres for the run."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from itertools import pairwise

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User
from core.tabular import FileRow, TableRejected, open_table
from loans.models import (
    CoBorrower,
    Customer,
    LoanAccount,
    LoanProduct,
    collection_officer_problem,
)
from loans.schedule import ScheduledInstalment, build_schedule
from loans.services import (
    NewLoan,
    loan_account_create,
    loan_accounts_bulk_add,
    loan_co_borrower_add,
)

from ..exceptions import ImportRefused, RowRefused
from ..models import ImportScheduleLine
from .base import (
    CREATED,
    UNCHANGED,
    CodeCell,
    DateCell,
    Importer,
    MoneyCell,
    first_error,
)

# --- Loans ------------------------------------------------------------------------------


def _co_borrowers(text: str) -> list[tuple[str, str, str]]:
    """``C1:SPOUSE;C2:PARENT:GUARANTOR`` -> [(number, relationship, role)]."""
    parsed = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        pieces = [p.strip().upper() for p in part.split(":")]
        if len(pieces) not in (2, 3):
            raise forms.ValidationError(
                f"“{part}”: write customer_number:relationship[:role], separated by ';'."
            )
        number, relationship = pieces[0], pieces[1]
        role = pieces[2] if len(pieces) == 3 else CoBorrower.Role.CO_BORROWER
        if relationship not in CoBorrower.Relationship.values:
            raise forms.ValidationError(
                f"“{relationship}” is not a relationship: "
                f"{', '.join(CoBorrower.Relationship.values)}."
            )
        if role not in CoBorrower.Role.values:
            raise forms.ValidationError(
                f"“{role}” is not a role: {', '.join(CoBorrower.Role.values)}."
            )
        parsed.append((number, relationship, role))
    return parsed


class LoanRow(forms.Form):
    loan_number = CodeCell(max_length=20, help_text="The loan's number (kept as is).")
    customer_number = CodeCell(max_length=20, help_text="The borrower (imported before).")
    branch_code = CodeCell(max_length=12, help_text="The loan's branch (the borrower's).")
    product_code = CodeCell(max_length=20, help_text="A loan product of this system.")
    sanctioned_amount = MoneyCell(min_value=Decimal("1000.00"), help_text="Rupees.")
    disbursed_amount = MoneyCell(min_value=Decimal("1000.00"), help_text="Rupees (≤ sanctioned).")
    interest_rate = forms.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=0,
        max_value=60,
        required=False,
        help_text="% a year; blank: the product's.",
    )
    tenure_months = forms.IntegerField(min_value=1, max_value=360, help_text="Months.")
    due_day = forms.IntegerField(min_value=1, max_value=28, help_text="Day of the month, 1 to 28.")
    disbursed_on = DateCell(help_text="YYYY-MM-DD or DD-MM-YYYY.")
    co_borrowers = forms.CharField(
        required=False,
        help_text="customer_number:relationship[:role] separated by ';' (relationship SPOUSE, "
        "PARENT, CHILD, SIBLING, BUSINESS_PARTNER, OTHER; role CO_BORROWER or GUARANTOR).",
    )
    collection_officer = forms.CharField(
        required=False, help_text="Username of the branch's collection officer."
    )

    def clean_co_borrowers(self):
        return _co_borrowers(self.cleaned_data["co_borrowers"])


TERMS = (
    "sanctioned_amount",
    "disbursed_amount",
    "interest_rate",
    "tenure_months",
    "due_day",
    "disbursed_on",
)


COLUMN_OF = {
    "customer": "customer_number",
    "branch": "branch_code",
    "product": "product_code",
    "loan": "loan_number",
    "payer": "payer_customer_number",
}


class ScheduleLineRow(forms.Form):
    loan_number = CodeCell(max_length=20, help_text="The loan (a row of the loans file).")
    number = forms.IntegerField(min_value=1, max_value=1000, help_text="1, 2, 3, ...")
    due_date = DateCell(help_text="YYYY-MM-DD or DD-MM-YYYY.")
    principal_due = MoneyCell(help_text="The instalment's principal.")
    interest_due = MoneyCell(help_text="The instalment's interest.")


SCHEDULE_BATCH = 5000
SCHEDULES_KEPT = 1000  # generated schedules kept for loans of the same terms
NOT_IN_SCHEDULE_FILE = "Not in the schedule file: the schedule is generated from the terms."


class LoanImporter(Importer):
    kind = "loans"
    title = "Loans with co-borrowers and schedule"
    form_class = LoanRow
    key_column = "loan_number"
    takes_schedule = True
    chunk_rows = 1000  # the set-based path's chunk (import_chunk)
    schedule_form = ScheduleLineRow
    schedule_examples = {
        "loan_number": "LEGL00042",
        "number": "1",
        "due_date": "2025-08-05",
        "principal_due": "5400.00",
        "interest_due": "2312.50",
    }
    examples = {
        "loan_number": "LEGL00042",
        "customer_number": "LEG000123",
        "branch_code": "PUN01",
        "product_code": "PL12",
        "sanctioned_amount": "150000.00",
        "disbursed_amount": "150000.00",
        "interest_rate": "18.50",
        "tenure_months": "24",
        "due_day": "5",
        "disbursed_on": "2025-06-20",
        "co_borrowers": "LEG000124:SPOUSE;LEG000200:PARENT:GUARANTOR",
        "collection_officer": "asha.patil",
    }

    def __init__(self, *, actor) -> None:
        super().__init__(actor=actor)
        self._products: dict[str, LoanProduct | None] = {}
        self.run = None
        self.staged = False
        self._schedules: dict[tuple, tuple] = {}

    @classmethod
    def schedule_header(cls) -> list[str]:
        return list(cls.schedule_form.base_fields)

    def prepare(self, run, schedule) -> None:
        """Stage the schedule file's lines in Postgres for the run (once: a resumed run
        finds them there), each read or with its error."""
        self.run, self.staged = run, bool(run.schedule_file_name)
        if schedule is None or ImportScheduleLine.objects.filter(run=run).exists():
            return
        name, source = schedule
        columns = [(key, field.required) for key, field in self.schedule_form.base_fields.items()]
        try:
            table = open_table(name=name, source=source, columns=columns)
        except TableRejected as exc:
            raise ImportRefused(f"The schedule file: {exc.message}") from None
        with transaction.atomic():
            batch = []
            for row in table.rows:
                batch.append(_schedule_line(run, row))
                if len(batch) >= SCHEDULE_BATCH:
                    ImportScheduleLine.objects.bulk_create(batch)
                    batch = []
            ImportScheduleLine.objects.bulk_create(batch)

    def finish(self, run) -> None:
        ImportScheduleLine.objects.filter(run=run).delete()

    def _schedule(self, loan_number: str, terms: dict):
        """The loan's own schedule from the schedule file, as (EMI, instalments); None when
        the file has none for it (then it is generated from the terms)."""
        if not self.staged:
            return None
        lines = list(
            ImportScheduleLine.objects.filter(run=self.run, loan_number=loan_number).order_by(
                "number", "line"
            )
        )
        if not lines:
            return None
        return _schedule_of(lines, terms)

    def write(self, data) -> str:
        branch = self.branch(data["branch_code"])
        product = self._product(data["product_code"])
        terms = _terms(data, product)
        number = data["loan_number"]
        loan = LoanAccount.objects.filter(loan_number=number).first()
        if loan is not None:
            self.check_scope(loan.branch_id, "loan_number")
            customer = self._customer(data["customer_number"], "customer_number", branch)
            return self._existing(loan, customer, branch, product, terms)
        customer = self._customer(data["customer_number"], "customer_number", branch)
        schedule = self._schedule(number, terms)
        loan = loan_account_create(
            customer=customer,
            product=product,
            branch=branch,
            loan_number=number,
            schedule=schedule,
            actor=self.actor,
            **terms,
        )
        for customer_number, relationship, role in data["co_borrowers"]:
            loan_co_borrower_add(
                loan=loan,
                customer=self._customer(customer_number, "co_borrowers", branch),
                relationship=relationship,
                role=role,
                actor=self.actor,
            )
        if data["collection_officer"]:
            officer = User.objects.filter(username=data["collection_officer"]).first()
            self._check_officer(officer, branch)
            LoanAccount.objects.filter(pk=loan.pk).update(collection_officer=officer)
        if self.staged and schedule is None:
            return CREATED, NOT_IN_SCHEDULE_FILE
        return CREATED

    def _existing(self, loan, customer, branch, product, terms) -> str:
        """A loan's terms are fixed once disbursed: the same row again is unchanged, a
        different one refused (never a second schedule)."""
        wanted = {
            "customer_id": customer.pk,
            "branch_id": branch.pk,
            "product_id": product.pk,
            **terms,
        }
        differing = [name for name, value in wanted.items() if getattr(loan, name) != value]
        if differing:
            name = differing[0].removesuffix("_id")
            raise RowRefused(
                COLUMN_OF.get(name, name),
                f"Loan {loan.loan_number} exists with another {name.replace('_', ' ')}: "
                "a loan's terms do not change once disbursed.",
            )
        return UNCHANGED

    def _customer(self, number: str, field: str, branch) -> Customer:
        return self._checked_customer(
            Customer.objects.filter(customer_number=number).first(), number, field
        )

    def _checked_customer(self, customer: Customer | None, number: str, field: str) -> Customer:
        if customer is None:
            raise RowRefused(field, f"No customer has the number {number}: import it first.")
        self.check_scope(customer.branch_id, field)
        return customer

    def _check_officer(self, officer: User | None, branch) -> None:
        if officer is None:
            raise RowRefused("collection_officer", "No user has this username.")
        if problem := collection_officer_problem(officer, branch.pk):
            raise RowRefused("collection_officer", problem)

    def _product(self, code: str) -> LoanProduct:
        if code not in self._products:
            self._products[code] = LoanProduct.objects.filter(code=code).first()
        product = self._products[code]
        if product is None:
            raise RowRefused("product_code", f"No loan product has the code {code}.")
        return product

    # --- The set-based path: a chunk of new loans at once --------------------------------

    def import_chunk(self, rows: list[FileRow]) -> list | None:
        """Validate the whole chunk against reference data read once (customers, loans,
        collection officers, staged schedule lines: a query each) and write its new loans
        with ``COPY`` (``loans.services.loan_accounts_bulk_add``). Returns every row's
        status, or None, having written nothing, when a row would be refused: the engine
        then imports the chunk row by row, which says why, line by line."""
        cleaned = []
        for row in rows:
            data = self.clean_cells(row.cells)
            if data is None:
                return None
            cleaned.append(data)
        numbers = [data["loan_number"] for data in cleaned]
        if len(set(numbers)) != len(numbers):
            return None  # the same loan twice in a chunk: the row path says which is which
        reference = _ChunkReference(self.run if self.staged else None, cleaned)
        statuses, new_loans = [], []
        try:
            for data in cleaned:
                status, new_loan = self._chunk_row(data, reference)
                statuses.append(status)
                if new_loan is not None:
                    new_loans.append(new_loan)
        except RowRefused:
            return None
        loan_accounts_bulk_add(new_loans, actor=self.actor)
        return statuses

    def _chunk_row(self, data, reference: _ChunkReference):
        """(status, the NewLoan to write or None) of a row, or ``RowRefused`` with the
        checks of ``write``, ``loan_account_create`` and ``loan_co_borrower_add``."""
        branch = self.branch(data["branch_code"])
        product = self._product(data["product_code"])
        terms = _terms(data, product)
        number = data["loan_number"]
        customer = self._checked_customer(
            reference.customers.get(data["customer_number"]),
            data["customer_number"],
            "customer_number",
        )
        loan = reference.loans.get(number)
        if loan is not None:
            self.check_scope(loan.branch_id, "loan_number")
            return self._existing(loan, customer, branch, product, terms), None
        if not product.min_tenure_months <= terms["tenure_months"] <= product.max_tenure_months:
            raise RowRefused("tenure_months", "Outside the product's tenure.")
        if terms["disbursed_amount"] > terms["sanctioned_amount"]:
            raise RowRefused("disbursed_amount", "More than sanctioned.")
        if customer.branch_id != branch.pk:
            raise RowRefused("customer_number", "The customer belongs to another branch.")
        co_borrowers, seen = [], {customer.customer_number}
        for co_number, relationship, role in data["co_borrowers"]:
            if co_number in seen:
                raise RowRefused("co_borrowers", "The borrower or a co-borrower twice.")
            seen.add(co_number)
            co_customer = self._checked_customer(
                reference.customers.get(co_number), co_number, "co_borrowers"
            )
            co_borrowers.append((co_customer, relationship, role))
        officer_id = None
        if data["collection_officer"]:
            officer = reference.officers.get(data["collection_officer"])
            self._check_officer(officer, branch)
            officer_id = officer.pk
        status = CREATED
        schedule = None
        if self.staged:
            lines = reference.schedule_lines.get(number)
            schedule = _schedule_of(lines, terms) if lines else None
            if schedule is None:
                status = (CREATED, NOT_IN_SCHEDULE_FILE)
        if schedule is None:
            schedule = self._generated_schedule(product, terms)
        emi_amount, instalments = schedule
        fields = {
            "loan_number": number,
            "customer": customer,
            "product": product,
            "branch": branch,
            "collection_officer_id": officer_id,
            **terms,
        }
        return status, NewLoan(fields, emi_amount, instalments, co_borrowers)

    def _generated_schedule(self, product, terms):
        """``build_schedule`` of the terms, as ``loan_schedule_generate`` makes it; the
        last few terms' schedules are kept (a book has many loans of the same terms)."""
        key = (
            terms["disbursed_amount"],
            terms["interest_rate"],
            terms["tenure_months"],
            product.emi_frequency,
            terms["disbursed_on"],
            terms["due_day"],
        )
        schedule = self._schedules.get(key)
        if schedule is None:
            if len(self._schedules) >= SCHEDULES_KEPT:
                self._schedules.clear()  # memory stays flat whatever the book
            schedule = self._schedules[key] = build_schedule(
                principal=key[0],
                annual_rate_percent=key[1],
                tenure_months=key[2],
                frequency=key[3],
                disbursed_on=key[4],
                due_day=key[5],
            )
        return schedule


class _ChunkReference:
    """What a chunk of loan rows refers to, read once: customers (borrowers and
    co-borrowers), the loans already there, collection officers, staged schedule lines."""

    def __init__(self, run, cleaned: list[dict]) -> None:
        numbers = [data["loan_number"] for data in cleaned]
        customer_numbers = {data["customer_number"] for data in cleaned}
        customer_numbers.update(n for data in cleaned for n, _, _ in data["co_borrowers"])
        self.customers = {
            c.customer_number: c
            for c in Customer.objects.filter(customer_number__in=customer_numbers).only(
                "id", "customer_number", "name", "branch_id"
            )
        }
        self.loans = {
            loan.loan_number: loan for loan in LoanAccount.objects.filter(loan_number__in=numbers)
        }
        usernames = {data["collection_officer"] for data in cleaned} - {""}
        self.officers = {u.username: u for u in User.objects.filter(username__in=usernames)}
        self.schedule_lines: dict[str, list[ImportScheduleLine]] = {}
        if run is not None:
            staged = ImportScheduleLine.objects.filter(run=run, loan_number__in=numbers)
            for line in staged.order_by("loan_number", "number", "line"):
                self.schedule_lines.setdefault(line.loan_number, []).append(line)


def _terms(data: dict, product: LoanProduct) -> dict:
    terms = {name: data[name] for name in TERMS}
    if terms["interest_rate"] is None:
        terms["interest_rate"] = product.interest_rate
    return terms


def _schedule_of(lines: list[ImportScheduleLine], terms: dict):
    """(EMI, instalments) from a loan's staged schedule lines (by number, then line), or
    ``RowRefused`` when they do not make a schedule of its terms."""
    for line in lines:
        if line.error:
            raise RowRefused("schedule", f"Schedule line {line.line}: {line.error}")
    numbers = [line.number for line in lines]
    if numbers != list(range(1, len(lines) + 1)):
        raise RowRefused("schedule", "The instalments are not numbered 1, 2, 3, ... once each.")
    dates = [line.due_date for line in lines]
    if dates[0] <= terms["disbursed_on"] or any(a >= b for a, b in pairwise(dates)):
        raise RowRefused(
            "schedule", "The due dates must come after the disbursal, each after the last."
        )
    principal = sum((line.principal_due for line in lines), Decimal("0"))
    if principal != terms["disbursed_amount"]:
        raise RowRefused(
            "schedule",
            f"The instalments' principal adds up to {principal}, not the disbursed "
            f"{terms['disbursed_amount']}.",
        )
    rows = [
        ScheduledInstalment(line.number, line.due_date, line.principal_due, line.interest_due)
        for line in lines
    ]
    emi_amount = Counter(row.total for row in rows).most_common(1)[0][0]
    return emi_amount, rows


def _schedule_line(run, row) -> ImportScheduleLine:
    form = ScheduleLineRow(data=row.cells)
    line = ImportScheduleLine(
        run=run, line=row.number, loan_number=row.cells["loan_number"].upper()
    )
    if form.is_valid():
        for name in ("number", "due_date", "principal_due", "interest_due"):
            setattr(line, name, form.cleaned_data[name])
    else:
        refused = first_error(ValidationError(form.errors.as_data()))
        line.error = f"{refused.field}: {refused.reason}"[:300]
    line.loan_number = line.loan_number[:20]
    return line
