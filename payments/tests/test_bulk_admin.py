"""The bulk upload screens: upload and preview, the confirmation, progress JSON, the result
file (never a formula), the template, scoping, and no query per row."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from payments.bulk_file import HEADER
from payments.models import BulkUpload
from payments.services import bulk_upload_import
from payments.tests.test_bulk import csv_bytes, preview, row, xlsx_bytes
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:payments_bulkupload_add")


def url(name: str, upload: BulkUpload) -> str:
    return reverse(f"admin:payments_bulkupload_{name}", args=[upload.pk])


def test_a_bad_file_is_a_field_message_and_nothing_is_stored(client, world):
    client.force_login(world.users["BS"])
    response = client.post(ADD, {"file": SimpleUploadedFile("list.pdf", b"%PDF")})
    assert response.status_code == 200
    assert response.context["form"].errors["file"] == [
        "Upload a CSV file (.csv) or an Excel workbook (.xlsx)."
    ]
    response = client.post(ADD, {"file": SimpleUploadedFile("a.csv", b"amount\n1\n")})
    assert "Missing column(s): loan_number, mode, receipt_number, collector." in (
        response.content.decode()
    )
    assert not BulkUpload.objects.exists()


def test_staff_upload_a_file_and_see_each_rows_result_with_names(client, world):
    client.force_login(world.users["BS"])
    own = world.loans["own"]
    content = csv_bytes(row(own, amount="123456.5", receipt="P-1"), row(own, amount="0"))
    response = client.post(ADD, {"file": SimpleUploadedFile("agency.csv", content)})
    upload = BulkUpload.objects.get()
    assert response.status_code == 302 and response.url == url("change", upload)
    page = client.get(response.url).content.decode()
    assert own.customer.name in page and "₹1,23,456.50" in page
    assert "Invalid</strong> · amount: The amount is zero." in page
    assert url("import", upload) in page  # the import link, to its confirmation


def test_the_confirmation_then_the_import_then_progress_and_result_file(client, world):
    staff, own = world.users["BS"], world.loans["own"]
    upload = preview(
        staff,
        row(own, amount="100.00", receipt="=HYPERLINK(1)"),
        row(own, amount="-1", receipt="N-2"),
        row(own, amount="250.00", receipt="N-3"),
    )
    client.force_login(staff)
    confirm = client.get(url("import", upload)).content.decode()
    assert "<strong>2</strong> payments totalling <strong>₹350.00</strong>" in confirm
    assert client.post(url("import", upload)).status_code == 302
    upload.refresh_from_db()
    assert upload.status == BulkUpload.Status.IMPORTING and upload.imported_by == staff
    assert client.get(url("progress", upload)).json()["done"] is False

    bulk_upload_import(upload_id=upload.pk)  # what the task runs
    progress = client.get(url("progress", upload)).json()
    assert progress == {
        "status": "DONE",
        "status_label": "Imported",
        "to_import": 2,
        "max": 2,
        "processed": 2,
        "percent": 100,
        "recorded": 2,
        "already_recorded": 0,
        "refused": 1,
        "done": True,
    }
    response = client.get(url("result", upload))
    assert response["Content-Disposition"] == 'attachment; filename="agency-result.csv"'
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines[0] == [*HEADER, "row", "status", "field", "transaction_id", "reason"]
    first, second, third = lines[1:]
    assert first[4] == "'=HYPERLINK(1)"  # never a formula
    assert first[8:10] == ["Recorded", ""] and len(first[10]) == 26
    assert second[8:] == ["Invalid", "amount", "", "The amount is negative."]
    assert third[8] == "Recorded"
    again = client.post(url("import", upload), follow=True).content.decode()
    assert "has been imported already" in again


def test_an_excel_upload_gets_an_excel_result_and_the_templates_have_the_header(client, world):
    staff, own = world.users["BS"], world.loans["own"]
    content = xlsx_bytes([HEADER, [own.loan_number, 500, "UPI", None, "X-1", "@agent", None]])
    client.force_login(staff)
    client.post(ADD, {"file": SimpleUploadedFile("field.xlsx", content)})
    upload = BulkUpload.objects.get()
    assert upload.file_format == "XLSX" and upload.to_import == 1
    sheet = load_workbook(io.BytesIO(client.get(url("result", upload)).content)).active
    values = [[cell.value for cell in line] for line in sheet.iter_rows()]
    assert values[0][:7] == HEADER and values[1][5] == "@agent"
    assert sheet["F2"].data_type == "s" and sheet["F2"].quotePrefix  # text, not a formula

    csv_template = client.get(reverse("admin:payments_bulkupload_template", args=["csv"]))
    assert csv_template.content.decode().strip() == ",".join(HEADER)
    xlsx_template = client.get(reverse("admin:payments_bulkupload_template", args=["xlsx"]))
    header = [c.value for c in load_workbook(io.BytesIO(xlsx_template.content)).active[1]]
    assert header == HEADER


def test_another_branchs_upload_is_neither_listed_nor_opened(client, world):
    upload = preview(world.users["BS"], row(world.loans["own"]))
    far_staff = UserFactory(role="Branch Staff", home_branch=world.branches["far"])
    preview(far_staff, row(world.loans["far"]))
    client.force_login(far_staff)
    listed = client.get(reverse("admin:payments_bulkupload_changelist"))
    assert [u.file_name for u in listed.context["cl"].result_list] == ["agency.csv"]
    assert all(u.branch == world.branches["far"] for u in listed.context["cl"].result_list)
    assert client.get(url("change", upload)).status_code == 302  # "perhaps it was deleted"
    for name in ("progress", "result", "import"):
        assert client.get(url(name, upload)).status_code == 404
    assert client.post(url("import", upload)).status_code == 404
    upload.refresh_from_db()
    assert upload.status == BulkUpload.Status.PREVIEWED


def test_the_list_and_the_rows_take_no_query_per_row(client, world):
    staff, own = world.users["BS"], world.loans["own"]
    client.force_login(staff)

    def queries(path: str) -> int:
        """After a warming visit: the content types and the ledger switch are cached then."""
        client.get(path)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    first = preview(staff, *[row(own, receipt=f"Q-{n}") for n in range(3)])
    few = (queries(url("change", first)), queries(reverse("admin:payments_bulkupload_changelist")))
    second = preview(staff, *[row(own, receipt=f"Q-{n}") for n in range(3, 40)])
    preview(staff, row(own, receipt="Q-99"))
    many = (
        queries(url("change", second)),
        queries(reverse("admin:payments_bulkupload_changelist")),
    )
    assert many == few


def test_the_confirmation_of_an_upload_with_nothing_to_import_goes_back(client, world):
    upload = preview(world.users["BS"], row(world.loans["own"], amount="0"))
    client.force_login(world.users["BS"])
    response = client.get(url("import", upload), follow=True)
    assert response.redirect_chain == [(url("change", upload), 302)]
    assert "nothing to import now" in response.content.decode()


def test_an_import_nobody_holds_any_more_can_be_resumed_from_its_page(client, world):
    from core.jobs import job_claim
    from payments.services.bulk import IMPORT_JOB, IMPORT_LEASE, bulk_upload_import_start

    staff, own = world.users["BS"], world.loans["own"]
    upload = preview(staff, row(own, receipt="RS-1"), row(own, receipt="RS-2"))
    bulk_upload_import_start(upload_id=upload.pk, actor=staff)  # its task never ran
    client.force_login(staff)
    page = client.get(url("change", upload)).content.decode()
    assert 'id="resume-link"' in page
    assert "Resume the import of" in client.get(url("import", upload)).content.decode()

    job_claim(name=IMPORT_JOB, key=str(upload.pk), lease=IMPORT_LEASE)  # a worker at it
    assert 'id="resume-link"' not in client.get(url("change", upload)).content.decode()
    response = client.post(url("import", upload), follow=True)
    assert '<li class="error">Agency.csv is being imported.</li>' in response.content.decode()
