"""The bulk repayment upload screens (/admin/payments/bulkupload/), for branch staff,
branch managers and operations (``payments.add_bulkupload``):

- the list of uploads (the user's branches', and their own);
- "Add": upload a CSV or Excel file; the templates to download (header row);
- an upload's page: the preview (every row's result), "Import…" with a confirmation page,
  then a progress bar that polls ``progress/`` (JSON) until the end, the counts, and the
  result file (``result/``: the rows as uploaded plus status, field, transaction id and
  reason; CSV, or Excel when uploaded as Excel).

The screens call ``payments.services`` (``bulk_upload_preview``, ``bulk_upload_import_start``)
and show their refusals as messages on the form; nothing here writes a row.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.admin_base import ScopedModelAdmin, ScopedRelatedFilter
from core.errors import ApplicationError
from core.spreadsheets import csv_response, xlsx_response

from . import selectors
from .bulk_file import COLUMNS, HEADER, MAX_BYTES
from .models import BulkUpload, BulkUploadRow
from .services import bulk_import_held, bulk_upload_import_start, bulk_upload_preview
from .services.bulk import UPLOAD_PERMISSION

ROWS_PER_PAGE = 200
RESULT_COLUMNS = ["row", "status", "field", "transaction_id", "reason"]
TEMPLATE_NAME = "bulk-repayments-template"


class BulkUploadForm(forms.Form):
    file = forms.FileField(
        label="File",
        help_text="CSV (UTF-8) or Excel (.xlsx), at most 10,000 rows, the first row naming the "
        "columns as in the template.",
    )

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.upload: BulkUpload | None = None

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        upload_file = cleaned["file"]
        content = upload_file.read(MAX_BYTES + 1)  # one byte more: too large
        try:
            self.upload = bulk_upload_preview(
                file_name=PurePath(upload_file.name).name, content=content, actor=self.actor
            )
        except ApplicationError as exc:  # the file refused, or the stores down
            self.add_error("file", ValidationError(exc.message, code=exc.code))
        return cleaned


def person(user) -> str:
    return (user.get_full_name() or user.username) if user else ""


@admin.register(BulkUpload)
class BulkUploadAdmin(ScopedModelAdmin):
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

    @admin.display(description="uploaded by", ordering="uploaded_by__username")
    def uploader(self, obj: BulkUpload) -> str:
        return person(obj.uploaded_by)

    def get_queryset(self, request):
        return selectors.bulk_uploads_for(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the import is a service's work, never an edit

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        views = [
            ("template/<str:file_format>/", self.template_view, "template"),
            ("<path:object_id>/import/", self.import_view, "import"),
            ("<path:object_id>/progress/", self.progress_view, "progress"),
            ("<path:object_id>/result/", self.result_view, "result"),
        ]
        return [
            path(route, self.admin_site.admin_view(view), name="{}_{}_{}".format(*info, name))
            for route, view, name in views
        ] + super().get_urls()

    # --- Upload and preview -------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = BulkUploadForm(
            request.POST if posted else None, request.FILES if posted else None, actor=request.user
        )
        if posted and form.is_valid():
            upload = form.upload
            self.message_user(
                request,
                f"{upload}: {upload.to_import} of {upload.total_rows} row(s) can be imported; "
                "nothing is recorded until you import them.",
                messages.SUCCESS if upload.to_import else messages.WARNING,
            )
            return redirect("admin:payments_bulkupload_change", upload.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload repayments",
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "columns": COLUMNS,
            "max_rows": BulkUpload.MAX_ROWS,
            "backdate_days": settings.PAYMENTS_BACKDATE_DAYS,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/payments/bulkupload/upload.html", context)

    def template_view(self, request, file_format: str):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if file_format == "csv":
            return csv_response([HEADER], filename=TEMPLATE_NAME)
        if file_format == "xlsx":
            return xlsx_response([HEADER], filename=TEMPLATE_NAME, title="Repayments")
        raise Http404

    # --- An upload's page ---------------------------------------------------------------

    def _visible(self, request, object_id: str) -> BulkUpload:
        if not self.has_view_permission(request):
            raise PermissionDenied
        upload = self.get_object(request, unquote(object_id))
        if upload is None:
            raise Http404
        return upload

    def change_view(self, request, object_id, form_url="", extra_context=None):
        upload = self.get_object(request, unquote(object_id))
        extra = {}
        if upload is not None and self.has_view_permission(request, upload):
            extra = self._detail_context(request, upload)
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def _detail_context(self, request, upload: BulkUpload) -> dict:
        problems_only = request.GET.get("rows") == "problems"
        rows = selectors.bulk_upload_rows(upload, problems_only=problems_only)
        page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
        may_import = request.user.has_perm(UPLOAD_PERMISSION)
        importing = upload.status == BulkUpload.Status.IMPORTING
        held = importing and bulk_import_held(upload)
        return {
            "upload": upload,
            "rows_page": page,
            "problems_only": problems_only,
            "uploader": person(upload.uploaded_by),
            "importer": person(upload.imported_by),
            "can_import": may_import
            and upload.status == BulkUpload.Status.PREVIEWED
            and upload.to_import > 0,
            "can_resume": may_import and importing and not held,
            "show_progress": upload.status != BulkUpload.Status.PREVIEWED,
            "Status": BulkUploadRow.Status,
        }

    def import_view(self, request, object_id: str):
        """GET: the confirmation (what will be recorded); POST: start (or resume) it."""
        upload = self._visible(request, object_id)
        if not request.user.has_perm(UPLOAD_PERMISSION):
            raise PermissionDenied
        detail = reverse("admin:payments_bulkupload_change", args=[upload.pk])
        if request.method == "POST":
            try:
                bulk_upload_import_start(upload_id=upload.pk, actor=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
            else:
                self.message_user(request, f"{upload}: the import has started.", messages.SUCCESS)
            return HttpResponseRedirect(detail)
        sent = upload.rows.filter(status__in=BulkUploadRow.SENT, imported=False)
        count = sent.count()
        if not count or (upload.status == BulkUpload.Status.IMPORTING and bulk_import_held(upload)):
            self.message_user(request, f"{upload}: nothing to import now.", messages.INFO)
            return HttpResponseRedirect(detail)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import {upload}?",
            "subtitle": None,
            "opts": self.opts,
            "upload": upload,
            "object": upload,
            "count": count,
            "total": sent.aggregate(total=Sum("amount"))["total"],
            "resume": upload.status == BulkUpload.Status.IMPORTING,
            "detail_url": detail,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/payments/bulkupload/confirm.html", context)

    def progress_view(self, request, object_id: str):
        upload = self._visible(request, object_id)
        return JsonResponse(
            {
                "status": upload.status,
                "status_label": upload.get_status_display(),
                "to_import": upload.to_import,
                "max": upload.to_import,
                "processed": upload.processed,
                "percent": upload.percent,
                "recorded": upload.recorded,
                "already_recorded": upload.already_recorded,
                "refused": upload.refused,
                "done": upload.status == BulkUpload.Status.DONE,
            }
        )

    def result_view(self, request, object_id: str):
        upload = self._visible(request, object_id)
        labels = dict(BulkUploadRow.Status.choices)
        rows = upload.rows.order_by("number").values_list(
            "number", "cells", "status", "field", "txn_id", "reason"
        )
        table = [HEADER + RESULT_COLUMNS] + [
            [cells.get(key, "") for key in HEADER] + [number, labels[status], field, txn_id, reason]
            for number, cells, status, field, txn_id, reason in rows.iterator(chunk_size=2000)
        ]
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", PurePath(upload.file_name).stem)[:80]
        filename = f"{stem or 'upload'}-result"
        if upload.file_format == BulkUpload.Format.XLSX:
            return xlsx_response(table, filename=filename, title="Result")
        return csv_response(table, filename=filename)
