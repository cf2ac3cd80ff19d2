"""Bulk repayment upload: a file of payments (a collection agency's, a field app's) is
previewed row by row, then imported through the one ingestion (``payment_ingest``).

- Preview (``bulk_upload_preview``): the file is read (``payments.bulk_file``); a file
  that cannot be read as a whole is refused with one message and nothing is stored. Every
  row is checked as the ingestion will check it (the loan in the user's scope and active,
  the amount, the mode, the business date within the back-date limit) plus what only a
  file has (a receipt number twice in the file), and against DynamoDB: a row this file
  already recorded is "already recorded", a receipt number the branch already recorded is
  invalid. The upload and its rows are stored; no payment is written.
- Import (``bulk_upload_import_start`` then the task's ``bulk_upload_import``): each valid
  row goes to ``payment_ingest`` with the idempotency key ``{sha256 of the file}:{row}``
  (source ``bulk``), so the same file uploaded again records nothing twice: its rows
  replay. Progress is written to the upload's row every ``CHUNK`` rows with the rows'
  results, under the one run-once guard (``core.jobs``): a killed import is taken over by
  the next run of the task, and the rows it had sent but not yet saved replay.
- At the end, one audit event with the counts.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone
from pynamodb.exceptions import PynamoDBException

from accounts.scoping import scope_queryset
from api.fields import max_amount
from audit.services import audit_record
from core.errors import ApplicationError
from core.jobs import job_heartbeat, job_held_for, job_run
from core.money import PAISA, inr
from core.workflow import require_permission
from dynamo.errors import is_unavailable
from loans.models import LoanAccount

from ..bulk_file import FileRow, read_bulk_file
from ..ddb_models import DedupItem, UniqueKeyItem
from ..exceptions import BulkImportRefused, PaymentRejected, RequestInFlight, StoreUnavailable
from ..models import BulkUpload, BulkUploadRow
from ._common import MODES
from .ingest import (
    PaymentInput,
    _dedup_key,
    _hash,
    _unique_keys,
    loan_not_found_message,
    payable_business_date,
    payment_ingest,
)

SOURCE = "bulk"
IMPORT_JOB = "payments.bulk_import"
IMPORT_LEASE = datetime.timedelta(minutes=2)
CHUNK = 50
UPLOAD_PERMISSION = "payments.add_bulkupload"
MAX_LENGTHS = {"receipt_number": 40, "collector": 80, "external_reference": 80}

_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_DATES = (
    (re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"), "%Y-%m-%d"),
    (re.compile(r"[0-9]{1,2}-[0-9]{1,2}-[0-9]{4}"), "%d-%m-%Y"),
    (re.compile(r"[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}"), "%d/%m/%Y"),
)
_FIELD_NAMES = {"loan_account": "loan_number"}  # the ingestion's field names, as columns


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass
class _Checked:
    """A row being checked: its problems, and what it means once it has none."""

    row: FileRow
    problems: list[tuple[str, str]] = field(default_factory=list)
    loan: LoanAccount | None = None
    amount: Decimal | None = None
    mode: str = ""
    business_date: datetime.date | None = None
    txn_id: str = ""
    already: bool = False

    def bad(self, name: str, message: str) -> None:
        self.problems.append((name, message))


# --- Reading the cells ------------------------------------------------------------------


def parse_amount(text: str) -> Decimal:
    """Rupees: digits with at most two decimal places (Indian or Western grouping commas
    and a leading ₹ are allowed), more than zero, at most ``PAYMENTS_MAX_AMOUNT``."""
    if not text:
        raise _Bad("amount", "The amount is missing.")
    plain = text.replace(",", "").removeprefix("₹").strip()
    if not _NUMBER.fullmatch(plain):
        raise _Bad("amount", f"The amount “{text}” is not a number.")
    amount = Decimal(plain)
    if amount == 0:
        raise _Bad("amount", "The amount is zero.")
    if amount < 0:
        raise _Bad("amount", "The amount is negative.")
    if amount != amount.quantize(PAISA):
        raise _Bad("amount", "The amount has more than two decimal places.")
    limit = max_amount()
    if amount > limit:
        raise _Bad("amount", f"The amount is above the limit of {inr(limit)}.")
    return amount.quantize(PAISA)


def parse_business_date(text: str) -> datetime.date | None:
    """Empty (today, by the branch's cut-off), YYYY-MM-DD, DD-MM-YYYY or DD/MM/YYYY."""
    if not text:
        return None
    for shape, pattern in _DATES:
        if shape.fullmatch(text):
            try:
                return datetime.datetime.strptime(text, pattern).date()
            except ValueError:
                break
    raise _Bad("business_date", f"“{text}” is not a date: write it as YYYY-MM-DD or DD-MM-YYYY.")


def _parse(checked: _Checked) -> None:
    cells = checked.row.cells
    if not cells["loan_number"]:
        checked.bad("loan_number", "The loan number is missing.")
    try:
        checked.amount = parse_amount(cells["amount"])
    except _Bad as bad:
        checked.bad(bad.field, bad.message)
    mode = cells["mode"].upper()
    if mode not in MODES:
        shown = f"“{cells['mode']}”" if cells["mode"] else "missing"
        checked.bad("mode", f"The mode is {shown}: use one of {', '.join(MODES)}.")
    checked.mode = mode
    try:
        checked.business_date = parse_business_date(cells["business_date"])
    except _Bad as bad:
        checked.bad(bad.field, bad.message)
    for name in ("receipt_number", "collector"):
        if not cells[name]:
            checked.bad(name, f"The {name.replace('_', ' ')} is missing.")
    for name, longest in MAX_LENGTHS.items():
        if len(cells[name]) > longest:
            checked.bad(name, f"The {name.replace('_', ' ')} is longer than {longest} characters.")


def payment_of(cells: dict[str, str]) -> PaymentInput:
    """The payment a valid row stands for, from its cells alone (an empty business date
    stays empty: the ingestion dates it), so that the ingestion sees the same request at
    every import of the same file, on any day, and replays it."""
    return PaymentInput(
        loan_number=cells["loan_number"].strip().upper(),
        amount=parse_amount(cells["amount"]),
        mode=cells["mode"].strip().upper(),
        business_date=parse_business_date(cells["business_date"]),
        receipt_number=cells["receipt_number"],
        collector=cells["collector"],
        external_reference=cells["external_reference"],
    )


def idempotency_key(upload_sha256: str, row_number: int) -> str:
    return f"{upload_sha256}:{row_number}"


# --- Preview ----------------------------------------------------------------------------


def _check_loans(rows: list[_Checked], actor) -> None:
    numbers = {c.row.cells["loan_number"].upper() for c in rows if c.row.cells["loan_number"]}
    loans = {
        loan.loan_number: loan
        for loan in scope_queryset(LoanAccount.objects.select_related("branch"), actor).filter(
            loan_number__in=numbers
        )
    }
    for checked in rows:
        number = checked.row.cells["loan_number"].upper()
        if not number:
            continue
        loan = loans.get(number)
        if loan is None:
            checked.bad("loan_number", loan_not_found_message(checked.row.cells["loan_number"]))
            continue
        checked.loan = loan
        if any(name == "business_date" for name, _ in checked.problems):
            continue
        try:
            checked.business_date = payable_business_date(loan, checked.business_date)
        except PaymentRejected as exc:
            checked.bad(_FIELD_NAMES.get(exc.field, exc.field or ""), exc.message)


def _check_twice_in_file(rows: list[_Checked]) -> None:
    """A receipt number is unique per branch: a second row with it is a duplicate row."""
    first: dict[tuple[int, str], int] = {}
    for checked in rows:
        receipt = checked.row.cells["receipt_number"].strip().upper()
        if checked.loan is None or not receipt:
            continue
        key = (checked.loan.branch_id, receipt)
        if key in first:
            checked.bad(
                "receipt_number",
                f"Duplicate row: receipt {checked.row.cells['receipt_number']} is also on "
                f"row {first[key]}.",
            )
        else:
            first[key] = checked.row.number


def _batch_get(model, key_name: str, keys: Iterable[str]) -> dict:
    """The items of these hash keys (a BatchGetItem per 100 keys), by key."""
    keys = list(dict.fromkeys(keys))
    return {getattr(item, key_name): item for item in model.batch_get(keys)} if keys else {}


def _check_recorded(rows: list[_Checked], sha256: str) -> None:
    """Against DynamoDB: rows this file recorded already (their idempotency key is done
    with the same request), then receipt numbers the branch recorded already."""
    valid = [c for c in rows if not c.problems]
    payments = {c.row.number: payment_of(c.row.cells) for c in valid}
    dedup_keys = {
        c.row.number: _dedup_key(SOURCE, idempotency_key(sha256, c.row.number)) for c in valid
    }
    known = _batch_get(DedupItem, "dedup_key", dedup_keys.values())
    now = timezone.now()
    for checked in valid:
        item = known.get(dedup_keys[checked.row.number])
        if (
            item is not None
            and item.state == "DONE"
            and item.expires_at > now
            and item.request_hash == _hash(payments[checked.row.number].canonical())
        ):
            checked.already, checked.txn_id = True, item.txn_id or ""
    receipts = {
        c.row.number: unique
        for c in valid
        if not c.already
        for unique in _unique_keys(
            payments[c.row.number], branch_id=c.loan.branch_id, source=SOURCE
        )
    }
    taken = _batch_get(UniqueKeyItem, "unique_key", (u.key for u in receipts.values()))
    for checked in valid:
        unique = receipts.get(checked.row.number)
        item = taken.get(unique.key) if unique else None
        if item is not None:
            checked.bad(unique.field, f"{unique.message} (transaction {item.txn_id}).")


def _row_of(checked: _Checked) -> BulkUploadRow:
    if checked.problems:
        status = BulkUploadRow.Status.INVALID
    elif checked.already:
        status = BulkUploadRow.Status.ALREADY_RECORDED
    else:
        status = BulkUploadRow.Status.VALID
    return BulkUploadRow(
        number=checked.row.number,
        cells=checked.row.cells,
        loan=checked.loan,
        amount=checked.amount,
        mode=checked.mode if checked.mode in MODES else "",
        business_date=checked.business_date,
        status=status,
        field=checked.problems[0][0] if checked.problems else "",
        reason=" ".join(message for _, message in checked.problems)[:500],
        txn_id=checked.txn_id,
    )


def _upload_branch(actor, rows: list[_Checked]):
    """The uploader's branch, or else the one branch of the file's loans (None: several)."""
    if actor.home_branch_id and actor.level == actor.Level.BRANCH:
        return actor.home_branch_id
    branches = {c.loan.branch_id for c in rows if c.loan is not None}
    return branches.pop() if len(branches) == 1 else None


def bulk_upload_preview(*, file_name: str, content: bytes, actor) -> BulkUpload:
    """Read and check a file; store it with every row's result, and write no payment.
    Raises ``BulkFileRejected`` (nothing stored) for a file that cannot be read."""
    require_permission(actor, UPLOAD_PERMISSION, "You may not upload repayment files.")
    bulk_file = read_bulk_file(name=file_name, content=content, max_rows=BulkUpload.MAX_ROWS)
    sha256 = hashlib.sha256(content).hexdigest()
    rows = [_Checked(row) for row in bulk_file.rows]
    for checked in rows:
        _parse(checked)
    _check_loans(rows, actor)
    _check_twice_in_file(rows)
    receipts_checked = True
    try:
        _check_recorded(rows, sha256)
    except PynamoDBException as exc:
        if not is_unavailable(exc):
            raise
        receipts_checked = False  # the import checks them: the ingestion refuses duplicates
    return _upload_store(actor, file_name, bulk_file.file_format, sha256, rows, receipts_checked)


@transaction.atomic
def _upload_store(
    actor,
    file_name: str,
    file_format: str,
    sha256: str,
    rows: list[_Checked],
    receipts_checked: bool,
) -> BulkUpload:
    """The upload and its rows, all or nothing (the checks above hold no transaction open)."""
    upload = BulkUpload.objects.create(
        file_name=file_name[:200],
        file_format=file_format,
        sha256=sha256,
        branch_id=_upload_branch(actor, rows),
        uploaded_by=actor,
        receipts_checked=receipts_checked,
        total_rows=len(rows),
    )
    models = [_row_of(row) for row in rows]
    for model in models:
        model.upload = upload
    BulkUploadRow.objects.bulk_create(models, batch_size=1000)
    _recount(upload)
    return upload


# --- Import -----------------------------------------------------------------------------


def bulk_upload_import_start(*, upload_id: int, actor) -> BulkUpload:
    """Confirm the import of an upload's valid rows (or resume one whose worker died):
    the task does the work. Refused when done, under way, or nothing is valid."""
    from ..selectors import bulk_uploads_for  # the selectors read through these services

    require_permission(actor, UPLOAD_PERMISSION, "You may not import repayment files.")
    with transaction.atomic():
        upload = bulk_uploads_for(actor).select_for_update(of=("self",)).get(pk=upload_id)
        if upload.status == BulkUpload.Status.DONE:
            raise BulkImportRefused(f"{upload} has been imported already.")
        if upload.status == BulkUpload.Status.IMPORTING and bulk_import_held(upload):
            raise BulkImportRefused(f"{upload} is being imported.")
        if not upload.to_import:
            raise BulkImportRefused(f"{upload} has no valid row to import.")
        if upload.status == BulkUpload.Status.PREVIEWED:
            upload.status = BulkUpload.Status.IMPORTING
            upload.imported_by = actor
            upload.import_started_at = timezone.now()
            upload.save(update_fields=["status", "imported_by", "import_started_at"])
        from ..tasks import bulk_upload_import_task

        bulk_upload_import_task.delay_on_commit(upload.pk)
    return upload


def bulk_import_held(upload: BulkUpload) -> bool:
    """Whether a worker is at the import now (else an importing upload waits for its task,
    or its worker died and the import may be resumed)."""
    return job_held_for(name=IMPORT_JOB, key=str(upload.pk)) is not None


def _import_row(row: BulkUploadRow, upload: BulkUpload) -> None:
    try:
        result = payment_ingest(
            payment=payment_of(row.cells),
            idempotency_key=idempotency_key(upload.sha256, row.number),
            principal=upload.imported_by,
            source=SOURCE,
        )
    except (StoreUnavailable, RequestInFlight):
        raise  # the task retries later; the row is sent again
    except ApplicationError as exc:
        row.status, row.txn_id = BulkUploadRow.Status.REFUSED, ""
        row.field = _FIELD_NAMES.get(exc.field, exc.field or "")
        row.reason = exc.message[:500]
    else:
        replayed = BulkUploadRow.Status.ALREADY_RECORDED
        row.status = replayed if result.replayed else BulkUploadRow.Status.RECORDED
        row.txn_id, row.field, row.reason = result.body["txn_id"], "", ""
    row.imported = True


def _recount(upload: BulkUpload) -> None:
    """The upload's counts, from its rows (the import's progress)."""
    Status = BulkUploadRow.Status
    counts = upload.rows.aggregate(
        to_import=Count("id", filter=Q(status__in=BulkUploadRow.SENT) | Q(imported=True)),
        processed=Count("id", filter=Q(imported=True)),
        recorded=Count("id", filter=Q(status=Status.RECORDED)),
        already_recorded=Count("id", filter=Q(status=Status.ALREADY_RECORDED, imported=True)),
        refused=Count("id", filter=Q(status__in=[Status.INVALID, Status.REFUSED])),
    )
    BulkUpload.objects.filter(pk=upload.pk).update(**counts)
    for name, value in counts.items():
        setattr(upload, name, value)


def _save(upload: BulkUpload, rows: list[BulkUploadRow], run) -> None:
    with transaction.atomic():
        BulkUploadRow.objects.bulk_update(rows, ["status", "field", "reason", "txn_id", "imported"])
        _recount(upload)
        job_heartbeat(run, progress={"last_row": rows[-1].number})


def bulk_upload_import(*, upload_id: int) -> dict:
    """Send the upload's rows not yet sent to the ingestion, ``CHUNK`` at a time, then
    mark it imported with one audit event. Run by the task; a second run while one holds
    the import is skipped, a run after a dead one resumes it."""
    with job_run(IMPORT_JOB, str(upload_id), lease=IMPORT_LEASE) as run:
        if run is None:
            return {"skipped": True}
        upload = BulkUpload.objects.select_related("imported_by").get(pk=upload_id)
        if upload.status != BulkUpload.Status.IMPORTING:
            return {"skipped": True}
        pending = upload.rows.filter(status__in=BulkUploadRow.SENT, imported=False)
        while chunk := list(pending.order_by("number")[:CHUNK]):
            done: list[BulkUploadRow] = []
            try:
                for row in chunk:
                    _import_row(row, upload)
                    done.append(row)
            except (StoreUnavailable, RequestInFlight):
                if done:
                    _save(upload, done, run)
                raise
            _save(upload, done, run)
        return _finish(upload)


@transaction.atomic
def _finish(upload: BulkUpload) -> dict:
    upload = (
        BulkUpload.objects.select_for_update(of=("self",))
        .select_related("imported_by")
        .get(pk=upload.pk)
    )
    _recount(upload)
    upload.status = BulkUpload.Status.DONE
    upload.finished_at = timezone.now()
    upload.save(update_fields=["status", "finished_at"])
    counts = {
        "rows": upload.total_rows,
        "recorded": upload.recorded,
        "already_recorded": upload.already_recorded,
        "refused": upload.refused,
    }
    audit_record(
        instance_or_entity=upload,
        action="transition",
        changes={
            "status": [BulkUpload.Status.IMPORTING, BulkUpload.Status.DONE],
            **{name: [None, value] for name, value in counts.items()},
        },
        remarks=f"{upload.file_name} (sha256 {upload.sha256[:12]}…)",
        actor=upload.imported_by,
    )
    return counts
