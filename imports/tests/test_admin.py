"""The import screens: upload and preview (nothing written), the import through the task's
service, progress and result file, scoping of runs, the templates."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Branch
from imports.importers import IMPORTERS
from imports.models import ImportRun
from imports.services import import_continue
from loans.models import Customer
from tests.factories import BranchFactory, UserFactory

from .helpers import BRANCH, csv_file, customer_row

pytestmark = pytest.mark.django_db


def _client(client, user):
    client.force_login(user)
    return client


def _upload(client, kind, content, name="book.csv"):
    return client.post(
        reverse("admin:imports_importrun_add"),
        {"kind": kind, "file": SimpleUploadedFile(name, content, content_type="text/csv")},
    )


def test_operations_previews_then_imports_a_file(client, django_capture_on_commit_callbacks):
    ops = _client(client, UserFactory(role="Operations"))
    response = _upload(ops, "branches", csv_file("branches", [BRANCH, {**BRANCH, "code": "x"}]))
    preview = ImportRun.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:imports_importrun_change", args=[preview.pk])
    assert preview.dry_run and not Branch.objects.exists()
    page = ops.get(response.url).content.decode()
    assert "Preview: nothing is written yet" in page and 'id="import-link"' in page
    assert "Use 2 to 12 capital letters" in page

    confirm = ops.get(reverse("admin:imports_importrun_import", args=[preview.pk]))
    assert "Yes, import" in confirm.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        started = ops.post(reverse("admin:imports_importrun_import", args=[preview.pk]))
    run = ImportRun.objects.get(dry_run=False)
    assert started.url == reverse("admin:imports_importrun_change", args=[run.pk])
    assert len(callbacks) == 1  # the task is sent after commit
    assert run.expected_rows == 2 and run.content == preview.content
    progress = ops.get(reverse("admin:imports_importrun_progress", args=[run.pk])).json()
    assert progress["done"] is False and progress["max"] == 2 and progress["processed"] == 0

    import_continue(run_id=run.pk)  # what the task does
    progress = ops.get(reverse("admin:imports_importrun_progress", args=[run.pk])).json()
    assert progress["done"] and progress["created"] == 1 and progress["refused"] == 1
    assert progress["percent"] == 100
    assert Branch.objects.get().code == "PUN01"
    result = ops.get(reverse("admin:imports_importrun_result", args=[run.pk]))
    lines = list(csv.reader(io.StringIO(result.content.decode())))
    assert lines[0] == ["line", "status", "key", "field", "reason"]
    assert [line[1] for line in lines[1:]] == ["CREATED", "REFUSED"]
    assert import_continue(run_id=run.pk) is None  # a second delivery does nothing


def test_a_file_refused_as_a_whole_is_a_field_error_and_stores_nothing(client):
    ops = _client(client, UserFactory(role="Operations"))
    response = _upload(ops, "customers", b"name,mobile\nA,9876543210\n")
    assert response.status_code == 200
    assert "Missing column(s): customer_number, branch_code, pan." in response.content.decode()
    assert not ImportRun.objects.exists()


def test_a_branch_manager_imports_only_their_branch_and_their_branch_sees_the_run(client):
    mine, other_branch = BranchFactory(code="PUN01"), BranchFactory(code="PUN02")
    colleague = UserFactory(role="Branch Manager", home_branch=mine)
    stranger = UserFactory(role="Branch Manager", home_branch=other_branch)
    manager = _client(client, UserFactory(role="Branch Manager", home_branch=mine))
    _upload(
        manager,
        "customers",
        csv_file("customers", [customer_row("L1", "PUN01"), customer_row("L2", "PUN02")]),
    )
    run = ImportRun.objects.get()
    assert run.branch == mine
    assert [r.status for r in run.results.order_by("line")] == ["CREATED", "REFUSED"]
    assert "book.csv" in manager.get(reverse("admin:imports_importrun_changelist")).content.decode()
    client.logout()
    assert (
        _client(client, colleague)
        .get(reverse("admin:imports_importrun_result", args=[run.pk]))
        .status_code
        == 200
    )
    client.logout()
    other = _client(client, stranger)
    assert other.get(reverse("admin:imports_importrun_change", args=[run.pk])).status_code == 302
    assert other.get(reverse("admin:imports_importrun_result", args=[run.pk])).status_code == 404
    assert not Customer.objects.exists()


def test_branch_staff_may_not_import(client):
    staff = _client(client, UserFactory(role="Branch Staff", home_branch=BranchFactory()))
    assert staff.get(reverse("admin:imports_importrun_add")).status_code == 403


@pytest.mark.parametrize("kind", [*IMPORTERS, "schedule"])
def test_each_template_downloads_as_the_importers_header(client, kind):
    ops = _client(client, UserFactory(role="Operations"))
    response = ops.get(reverse("admin:imports_importrun_template", args=[kind]))
    header = next(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    expected = (
        IMPORTERS["loans"].schedule_header() if kind == "schedule" else IMPORTERS[kind].header()
    )
    assert header == expected
