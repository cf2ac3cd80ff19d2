"""Files for the import tests: rows as dicts, written as the importer's CSV or xlsx."""

from __future__ import annotations

import csv
import io

from openpyxl import Workbook

from imports.importers import IMPORTERS
from imports.models import ImportRun
from imports.services import import_run
from loans.models import Customer


def csv_file(kind: str, rows: list[dict], header: list[str] | None = None) -> bytes:
    header = header or IMPORTERS[kind].header()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(key, "") for key in header])
    return out.getvalue().encode()


def xlsx_file(kind: str, rows: list[dict]) -> bytes:
    header = IMPORTERS[kind].header()
    book = Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append([row.get(key, "") for key in header])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def run_import(
    kind: str,
    rows: list[dict],
    *,
    actor=None,
    dry_run=False,
    name="book.csv",
    content=None,
    schedule: bytes | None = None,
) -> ImportRun:
    content = content if content is not None else csv_file(kind, rows)
    return import_run(
        kind=kind,
        file_name=name,
        source=io.BytesIO(content),
        actor=actor,
        dry_run=dry_run,
        schedule=("schedule.csv", io.BytesIO(schedule)) if schedule is not None else None,
    )


def schedule_file(lines: list[tuple]) -> bytes:
    """(loan_number, number, due_date, principal_due, interest_due) a line."""
    header = ["loan_number", "number", "due_date", "principal_due", "interest_due"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(lines)
    return out.getvalue().encode()


def results(run: ImportRun) -> dict[int, tuple[str, str, str]]:
    return {r.line: (r.status, r.field, r.reason) for r in run.results.all()}


def statuses(run: ImportRun) -> list[str]:
    return [r.status for r in run.results.order_by("line")]


BRANCH = {
    "code": "PUN01",
    "name": "Pune Camp",
    "state": "Maharashtra",
    "area_code": "PUN",
    "area_name": "Pune",
    "region_code": "WEST",
    "region_name": "West",
}


def customer_row(number: str, branch_code: str, **overrides) -> dict:
    return {
        "customer_number": number,
        "branch_code": branch_code,
        "name": f"Customer {number}",
        "mobile": "+91 98765 43210",
        "pan": "abcde1234f",
        "bank_holder_name": f"Customer {number}",
        "bank_name": "State Bank of India",
        "bank_account_number": "123456789012",
        "bank_ifsc": "SBIN0001234",
        **overrides,
    }


def loan_row(number: str, customer_number: str, branch_code: str, **overrides) -> dict:
    return {
        "loan_number": number,
        "customer_number": customer_number,
        "branch_code": branch_code,
        "product_code": "MSME",
        "sanctioned_amount": "1,20,000.00",
        "disbursed_amount": "120000",
        "tenure_months": "12",
        "due_day": "5",
        "disbursed_on": "02-01-2026",
        **overrides,
    }


def customers_in(branch, numbers) -> None:
    """Customers ``LEG{n}`` of ``branch`` for each n, bulk-created (the loans' borrowers)."""
    Customer.objects.bulk_create(
        Customer(
            customer_number=f"LEG{n}",
            name=f"Customer {n}",
            mobile="9876543210",
            pan="ABCDE1234F",
            branch=branch,
        )
        for n in numbers
    )
