"""Bulk repayment upload: reading the file, the preview's reasons, the import through the
one ingestion (exactly once, also for the same file again), a resumed import, scoping."""

from __future__ import annotations

import datetime
import io
import time

import pytest
from django.db import transaction
from django.utils import timezone
from openpyxl import Workbook

from audit.models import AuditMessage
from core.models import JobRun
from core.workflow import NotAllowed
from loans.models import LoanAccount
from payments.bulk_file import HEADER, read_bulk_file
from payments.ddb_models import TransactionItem
from payments.exceptions import BulkFileRejected, BulkImportRefused
from payments.models import BulkUpload, BulkUploadRow
from payments.selectors import bulk_uploads_for
from payments.services import bulk as bulk_services
from payments.services import (
    bulk_upload_import,
    bulk_upload_import_start,
    bulk_upload_preview,
    payment_ingest,
)
from tests.factories import UserFactory, make_loan, payment

pytestmark = pytest.mark.django_db

Status = BulkUploadRow.Status


def csv_bytes(*rows: str, header: str = ",".join(HEADER), bom: bool = False) -> bytes:
    text = "\r\n".join([header, *rows]) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def xlsx_bytes(rows: list[list]) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def row(loan, amount="1000.00", mode="CASH", day="", receipt="R-1", collector="Agent A", ref=""):
    number = loan if isinstance(loan, str) else loan.loan_number
    return f"{number},{amount},{mode},{day},{receipt},{collector},{ref}"


def preview(actor, *rows: str, name="agency.csv") -> BulkUpload:
    return bulk_upload_preview(file_name=name, content=csv_bytes(*rows), actor=actor)


def statuses(upload: BulkUpload) -> list[str]:
    return list(upload.rows.order_by("number").values_list("status", flat=True))


def imported(upload: BulkUpload, actor) -> BulkUpload:
    bulk_upload_import_start(upload_id=upload.pk, actor=actor)
    bulk_upload_import(upload_id=upload.pk)
    upload.refresh_from_db()
    return upload


# --- Reading the file -----------------------------------------------------------------------


def test_a_csv_with_a_bom_and_headers_spelled_any_way_is_read():
    content = csv_bytes(
        "LN0000000001,1500,upi,R-9,Agent B",
        header="Loan Number,AMOUNT,Mode,receipt-number,Collector",
        bom=True,
    )
    bulk_file = read_bulk_file(name="field.CSV", content=content, max_rows=10)
    assert bulk_file.file_format == "CSV"
    (only,) = bulk_file.rows
    assert only.number == 2
    assert only.cells == {
        "loan_number": "LN0000000001",
        "amount": "1500",
        "mode": "upi",
        "business_date": "",
        "receipt_number": "R-9",
        "collector": "Agent B",
        "external_reference": "",
    }


def test_an_excel_file_is_read_with_its_numbers_and_dates_as_typed():
    content = xlsx_bytes(
        [
            HEADER,
            ["LN0000000001", 1500.5, "CASH", datetime.date(2026, 12, 5), "R-1", "A", None],
            [None] * 7,  # a blank row is skipped, and counted
            ["LN0000000002", 200, "UPI", None, 42, "B", "=cmd"],
        ]
    )
    bulk_file = read_bulk_file(name="agency.xlsx", content=content, max_rows=10)
    assert bulk_file.file_format == "XLSX"
    first, second = bulk_file.rows
    assert (first.number, first.cells["amount"], first.cells["business_date"]) == (
        2,
        "1500.5",
        "2026-12-05",
    )
    assert (second.number, second.cells["amount"], second.cells["receipt_number"]) == (
        4,
        "200",
        "42",
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("payments.pdf", b"%PDF-1.4", "Upload a CSV file (.csv) or an Excel workbook (.xlsx)"),
        ("old.xls", b"\xd0\xcf\x11\xe0rest", "Old Excel files (.xls)"),
        ("fake.xlsx", b"loan_number,amount\n", "not a valid Excel workbook"),
        ("latin.csv", "loan_number,amount\nLN1,Réservé\n".encode("latin-1"), "not UTF-8"),
        ("empty.csv", b"\r\n\r\n", "The file is empty"),
        ("header.csv", csv_bytes(), "a header but no rows"),
        ("data.csv", b"LN0000000001,100,CASH,,R-1,A,\n", "no header row"),
        ("short.csv", b"loan_number,amount,receipt_number\nLN1,1,R\n", "Missing column(s): mode"),
        (
            "twice.csv",
            csv_bytes("x", header=",".join(HEADER) + ",amount"),
            "amount appears twice",
        ),
        (
            "big.csv",
            csv_bytes(*[f"LN0000000001,1,CASH,,R-{n},A," for n in range(10_001)]),
            "10,001 rows; at most 10,000",
        ),
    ],
)
def test_a_bad_file_gets_one_message_and_nothing_is_stored(name, content, message):
    actor = UserFactory(role="Operations")
    with pytest.raises(BulkFileRejected, match=message.replace("(", r"\(").replace(")", r"\)")):
        bulk_upload_preview(file_name=name, content=content, actor=actor)
    assert not BulkUpload.objects.exists() and not BulkUploadRow.objects.exists()


# --- Preview --------------------------------------------------------------------------------


def test_the_preview_gives_every_bad_row_its_field_and_reason_and_writes_no_payment(world):
    staff = world.users["BS"]
    own = world.loans["own"]
    closed = make_loan(branch=world.branches["own"])
    LoanAccount.objects.filter(pk=closed.pk).update(status=LoanAccount.Status.CLOSED)
    payment_ingest(
        payment=payment(own, receipt_number="TAKEN-1"),
        idempotency_key="desk-1",
        principal=staff,
        source="test",
    )
    before = TransactionItem.count()
    today = timezone.localdate()
    upload = preview(
        staff,
        row(own, receipt="OK-1"),
        row("LN9999999999", receipt="R-2"),
        row(world.loans["far"], receipt="R-3"),
        row(closed, receipt="R-4"),
        row(own, amount="abc", receipt="R-5"),
        row(own, amount="0", receipt="R-6"),
        row(own, amount="-5", receipt="R-7"),
        row(own, amount="10.555", receipt="R-8"),
        row(own, day="31-02-2026", receipt="R-9"),
        row(own, day=(today + datetime.timedelta(days=2)).isoformat(), receipt="R-10"),
        row(own, day=(today - datetime.timedelta(days=30)).isoformat(), receipt="R-11"),
        row(own, mode="CARD", receipt="R-12"),
        row(own, receipt="ok-1"),
        row(own, receipt="taken-1"),
        row(own, collector="", receipt="R-15"),
        row(
            own, amount='"1,23,456.50"', mode="neft", day=today.strftime("%d/%m/%Y"), receipt="R-16"
        ),
    )
    expected = [
        (2, Status.VALID, "", ""),
        (3, Status.INVALID, "loan_number", "No loan account LN9999999999 that you may post to"),
        (4, Status.INVALID, "loan_number", "that you may post to"),  # another branch's loan
        (5, Status.INVALID, "loan_number", "is closed"),
        (6, Status.INVALID, "amount", "is not a number"),
        (7, Status.INVALID, "amount", "is zero"),
        (8, Status.INVALID, "amount", "is negative"),
        (9, Status.INVALID, "amount", "more than two decimal places"),
        (10, Status.INVALID, "business_date", "is not a date"),
        (11, Status.INVALID, "business_date", "cannot be in the future"),
        (12, Status.INVALID, "business_date", "more than 3 days back"),
        (13, Status.INVALID, "mode", "use one of CASH, UPI, CHEQUE, NEFT, NACH"),
        (14, Status.INVALID, "receipt_number", "Duplicate row: receipt ok-1 is also on row 2"),
        (
            15,
            Status.INVALID,
            "receipt_number",
            "Receipt taken-1 of this branch is already recorded",
        ),
        (16, Status.INVALID, "collector", "The collector is missing"),
        (17, Status.VALID, "", ""),
    ]
    rows = list(upload.rows.order_by("number"))
    assert [(r.number, r.status, r.field) for r in rows] == [e[:3] for e in expected]
    for got, (*_, reason) in zip(rows, expected, strict=True):
        assert reason in got.reason, (got.number, got.reason)
    last = rows[-1]
    assert (str(last.amount), last.mode, last.business_date) == ("123456.50", "NEFT", today)
    assert (upload.total_rows, upload.to_import, upload.refused) == (16, 2, 14)
    assert upload.status == BulkUpload.Status.PREVIEWED and upload.branch == world.branches["own"]
    assert TransactionItem.count() == before  # nothing written


# --- Import ---------------------------------------------------------------------------------


def test_the_import_records_each_valid_row_once_and_the_same_file_again_records_nothing(world):
    staff, own = world.users["BS"], world.loans["own"]
    rows = [row(own, amount="100.00", receipt="A-1"), row(own, amount="x", receipt="A-2")]
    rows += [row(own, amount="250.50", mode="UPI", receipt="A-3", ref="UTR77")]
    upload = imported(preview(staff, *rows), staff)
    assert statuses(upload) == [Status.RECORDED, Status.INVALID, Status.RECORDED]
    assert (upload.status, upload.recorded, upload.already_recorded, upload.refused) == (
        BulkUpload.Status.DONE,
        2,
        0,
        1,
    )
    first_txn = upload.rows.get(number=2).txn_id
    txn = TransactionItem.get(first_txn)
    assert (txn.amount_paise, txn.receipt_number, txn.source) == (10000, "A-1", "bulk")
    assert TransactionItem.count() == 2

    again = preview(world.users["BM"], *rows)  # the same bytes, another user
    assert statuses(again) == [Status.ALREADY_RECORDED, Status.INVALID, Status.ALREADY_RECORDED]
    assert again.rows.get(number=2).txn_id == first_txn
    again = imported(again, world.users["BM"])
    assert statuses(again) == [Status.ALREADY_RECORDED, Status.INVALID, Status.ALREADY_RECORDED]
    assert (again.recorded, again.already_recorded, again.refused) == (0, 2, 1)
    assert TransactionItem.count() == 2  # nothing recorded twice

    events = AuditMessage.objects.filter(ref=f"payments.bulkupload#{upload.pk}")
    (event,) = events  # one event per import, with its counts
    assert event.payload["action"] == "transition"
    assert event.payload["changes"]["status"] == ["IMPORTING", "DONE"]
    assert event.payload["changes"]["recorded"] == [None, 2]
    assert event.payload["changes"]["refused"] == [None, 1]


def test_a_killed_import_resumes_and_the_rows_it_had_sent_replay(world, monkeypatch):
    staff, own = world.users["BS"], world.loans["own"]
    upload = preview(staff, *[row(own, amount="10.00", receipt=f"K-{n}") for n in range(6)])
    bulk_upload_import_start(upload_id=upload.pk, actor=staff)

    class Killed(BaseException):
        """The worker dies after DynamoDB took a row, before Postgres saved it."""

    sent = []

    def dies_after_three(**kwargs):
        result = payment_ingest(**kwargs)
        sent.append(result)
        if len(sent) == 3:
            raise Killed
        return result

    monkeypatch.setattr(bulk_services, "payment_ingest", dies_after_three)
    with pytest.raises(Killed):
        bulk_upload_import(upload_id=upload.pk)
    assert TransactionItem.count() == 3
    assert not upload.rows.filter(imported=True).exists()  # nothing saved: the chunk died
    assert JobRun.objects.get(name=bulk_services.IMPORT_JOB).state == JobRun.State.FAILED

    monkeypatch.setattr(bulk_services, "payment_ingest", payment_ingest)
    assert bulk_upload_import(upload_id=upload.pk) == {
        "rows": 6,
        "recorded": 3,
        "already_recorded": 3,
        "refused": 0,
    }
    assert statuses(upload) == [Status.ALREADY_RECORDED] * 3 + [Status.RECORDED] * 3
    assert TransactionItem.count() == 6  # each row once
    assert bulk_upload_import(upload_id=upload.pk) == {"skipped": True}  # done is done


def test_an_import_is_refused_when_done_empty_or_not_allowed(world):
    staff, own = world.users["BS"], world.loans["own"]
    nothing_valid = preview(staff, row(own, amount="0"))
    with pytest.raises(BulkImportRefused, match="no valid row"):
        bulk_upload_import_start(upload_id=nothing_valid.pk, actor=staff)
    done = imported(preview(staff, row(own)), staff)
    with pytest.raises(BulkImportRefused, match="imported already"):
        bulk_upload_import_start(upload_id=done.pk, actor=staff)
    with pytest.raises(NotAllowed):
        bulk_upload_import_start(upload_id=done.pk, actor=world.users["AU"])
    with pytest.raises(NotAllowed):
        bulk_upload_preview(file_name="a.csv", content=csv_bytes(row(own)), actor=world.users["AU"])


def test_uploads_are_scoped_to_the_branch_and_a_branch_user_cannot_import_another_branchs(world):
    far_staff = UserFactory(role="Branch Staff", home_branch=world.branches["far"])
    own_upload = preview(world.users["BS"], row(world.loans["own"]))
    far_upload = preview(far_staff, row(world.loans["far"]), row(world.loans["own"], receipt="X"))
    assert statuses(far_upload) == [Status.VALID, Status.INVALID]  # own's loan is not theirs
    ops_upload = preview(world.users["OP"], row(world.loans["near"]), row(world.loans["far"]))
    assert ops_upload.branch is None  # two branches: seen by its uploader and head office

    assert set(bulk_uploads_for(world.users["BS"])) == {own_upload}
    assert set(bulk_uploads_for(far_staff)) == {far_upload}
    assert set(bulk_uploads_for(world.users["OP"])) == {own_upload, far_upload, ops_upload}
    area = set(bulk_uploads_for(world.users["AM"]))
    assert area == {own_upload}  # the area's branches; far is another region
    with pytest.raises(BulkUpload.DoesNotExist):
        bulk_upload_import_start(upload_id=own_upload.pk, actor=far_staff)


@pytest.mark.django_db(transaction=True)
def test_the_import_runs_in_celerys_embedded_worker_and_records_its_progress(world):
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    staff, own = world.users["BS"], world.loans["own"]
    upload = preview(staff, *[row(own, amount="5.00", receipt=f"W-{n}") for n in range(60)])
    with start_worker(app, perform_ping_check=False, pool="solo", shutdown_timeout=10):
        with transaction.atomic():
            bulk_upload_import_start(upload_id=upload.pk, actor=staff)
        deadline = time.monotonic() + 90
        while upload.status != BulkUpload.Status.DONE:
            assert time.monotonic() < deadline, f"the import did not finish: {upload.processed}"
            time.sleep(0.3)
            upload.refresh_from_db()
    assert (upload.processed, upload.recorded, upload.percent) == (60, 60, 100)
    assert JobRun.objects.get(name=bulk_services.IMPORT_JOB).progress == {"last_row": 61}
    assert TransactionItem.count() == 60
