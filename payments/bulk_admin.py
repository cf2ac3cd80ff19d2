"""The bulk repayment upload screens (/admin/payments/bulkupload/), for branch staff,
branch managers and operations (``payments.add_bulkupload``):

- the list of uploads (the user's branches', and their own);
- "Add": upload a CSV or Excel file; the templates to download (header row);
- an upload's page: the preview (every row's result), "Import…" with a confirmation page,
  then a progress bar that polls ``progress/`` (JSON) until the end, the counts, and the
  result file (``result/``: the rows as uploaded plus status, field, transaction id and
  reason; CSV, or Excel when uploaded as Excel).

The screens call ``payments.services`` (``bulk_upload_preview``, ``bulk_upload_import_start``)
and show their refusals as messages on the form; nothing here writes a row. The views are
the one file-import admin's (``core.admin.file_import``), shared with the imports' runs.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.http import Http404

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter
from core.admin.file_import import FileImportAdmin, FileUploadForm, person
from core.spreadsheets import csv_response, xlsx_response

from . import selectors
from .bulk_file import COLUMNS, HEADER, MAX_BYTES
from .models import BulkUpload, BulkUploadRow
from .services import bulk_import_held, bulk_upload_import_start, bulk_upload_preview
from .services.bulk import UPLOAD_PERMISSION

RESULT_COLUMNS = ["row", "status", "field", "transaction_id", "reason"]
TEMPLATE_NAME = "bulk-repayments-template"


class BulkUploadForm(FileUploadForm):
    file = forms.FileField(
        label="File",
        help_text="CSV (UTF-8) or Excel (.xlsx), at most 10,000 rows, the first row naming the "
        "columns as in the template.",
    )
    max_bytes = MAX_BYTES

    def preview(self, cleaned: dict, *, file_name: str, content: bytes) -> BulkUpload:
        return bulk_upload_preview(file_name=file_name, content=content, actor=self.actor)


@admin.register(BulkUpload)
class BulkUploadAdmin(FileImportAdmin, ScopedModelAdmin):
    list_display = [
        "file_name",
        "branch",
        "uploader",
        "uploaded_at",
        "status",
        "total_rows",
        "recorded",
        "already_recorded",
        "refused",
    ]
    list_display_links = ["file_name"]
    list_select_related = ["branch", "uploaded_by"]
    list_filter = ["status", ("branch", ScopedRelatedFilter)]
    search_fields = ["file_name"]
    search_help_text = "File name."
    change_form_template = "admin/payments/bulkupload/detail.html"
    upload_form = BulkUploadForm
    upload_template = "admin/payments/bulkupload/upload.html"
    upload_title = "Upload repayments"
    confirm_template = "admin/payments/bulkupload/confirm.html"
    import_permission = UPLOAD_PERMISSION
    template_argument = "file_format"
    page_prefix = "bulk"
    problem_rows = "invalid and refused rows"

    @admin.display(description="uploaded by", ordering="uploaded_by__username")
    def uploader(self, obj: BulkUpload) -> str:
        return person(obj.uploaded_by)

    def get_queryset(self, request):
        return selectors.bulk_uploads_for(request.user)

    # --- Upload and preview -------------------------------------------------------------

    def previewed_message(self, obj: BulkUpload) -> tuple[str, int]:
        return (
            f"{obj}: {obj.to_import} of {obj.total_rows} row(s) can be imported; "
            "nothing is recorded until you import them.",
            messages.SUCCESS if obj.to_import else messages.WARNING,
        )

    def upload_context(self) -> dict:
        return {
            "columns": COLUMNS,
            "max_rows": BulkUpload.MAX_ROWS,
            "backdate_days": settings.PAYMENTS_BACKDATE_DAYS,
        }

    def template_view(self, request, file_format: str):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if file_format == "csv":
            return csv_response([HEADER], filename=TEMPLATE_NAME)
        if file_format == "xlsx":
            return xlsx_response([HEADER], filename=TEMPLATE_NAME, title="Repayments")
        raise Http404

    # --- An upload's page ---------------------------------------------------------------

    def detail_rows(self, obj: BulkUpload, *, problems_only: bool):
        return selectors.bulk_upload_rows(obj, problems_only=problems_only)

    def detail_context(self, request, obj: BulkUpload, *, may_import: bool) -> dict:
        importing = obj.status == BulkUpload.Status.IMPORTING
        held = importing and bulk_import_held(obj)
        return {
            "upload": obj,
            "uploader": person(obj.uploaded_by),
            "importer": person(obj.imported_by),
            "can_import": may_import
            and obj.status == BulkUpload.Status.PREVIEWED
            and obj.to_import > 0,
            "can_resume": may_import and importing and not held,
            "show_progress": obj.status != BulkUpload.Status.PREVIEWED,
            "show_result_link": obj.status != BulkUpload.Status.PREVIEWED,
            "Status": BulkUploadRow.Status,
        }

    def confirm_context(self, request, obj: BulkUpload) -> dict | None:
        """What will be recorded; None when nothing is (or a worker is at it now)."""
        sent = obj.rows.filter(status__in=BulkUploadRow.SENT, imported=False)
        count = sent.count()
        if not count or (obj.status == BulkUpload.Status.IMPORTING and bulk_import_held(obj)):
            return None
        return {
            "title": f"Import {obj}?",
            "upload": obj,
            "count": count,
            "total": sent.aggregate(total=Sum("amount"))["total"],
            "resume": obj.status == BulkUpload.Status.IMPORTING,
        }

    def import_start(self, request, obj: BulkUpload) -> BulkUpload:
        bulk_upload_import_start(upload_id=obj.pk, actor=request.user)
        return obj

    def progress(self, obj: BulkUpload) -> dict:
        return {
            "status": obj.status,
            "status_label": obj.get_status_display(),
            "to_import": obj.to_import,
            "max": obj.to_import,
            "processed": obj.processed,
            "percent": obj.percent,
            "recorded": obj.recorded,
            "already_recorded": obj.already_recorded,
            "refused": obj.refused,
            "done": obj.status == BulkUpload.Status.DONE,
        }

    def result_file(self, obj: BulkUpload):
        labels = dict(BulkUploadRow.Status.choices)
        rows = obj.rows.order_by("number").values_list(
            "number", "cells", "status", "field", "txn_id", "reason"
        )
        table = [HEADER + RESULT_COLUMNS] + [
            [cells.get(key, "") for key in HEADER] + [number, labels[status], field, txn_id, reason]
            for number, cells, status, field, txn_id, reason in rows.iterator(chunk_size=2000)
        ]
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", PurePath(obj.file_name).stem)[:80]
        filename = f"{stem or 'upload'}-result"
        if obj.file_format == BulkUpload.Format.XLSX:
            return xlsx_response(table, filename=filename, title="Result")
        return csv_response(table, filename=filename)
