"""The import screens (/admin/imports/importrun/), for Operations and branch managers
(``imports.add_importrun``; a branch user's rows are limited to their branch):

- the list of runs (a user's own; every run for who sees every branch);
- "Add": choose the kind, upload a CSV or Excel file (and, for loans, their schedules), with
  each kind's template (header row) to download; the preview is a dry run: every row's
  result, nothing written;
- a run's page: the preview's results and "Import…" (a confirmation page), then the
  import's progress bar (a Celery task; the page polls ``progress/``), its counts, and the
  result file (``result/``: line, status, key, field, reason).

The screens call ``imports.services`` and show their refusals on the form; the views are
the one file-import admin's (``core.admin.file_import``), shared with the bulk repayments.
"""

from __future__ import annotations

from pathlib import PurePath

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404

from accounts.admin_base import ScopedModelAdmin
from core.admin.file_import import FileImportAdmin, FileUploadForm, person
from core.errors import ApplicationError
from core.spreadsheets import csv_response

from . import selectors
from .importers import IMPORTERS
from .models import ImportRowResult, ImportRun
from .services import (
    ADMIN_MAX_BYTES,
    ADMIN_MAX_ROWS,
    IMPORT_PERMISSION,
    import_held,
    import_preview,
    import_results,
    import_start,
)

RESULT_HEADER = ["line", "status", "key", "field", "reason"]
NOBODY = "the system"


class ImportUploadForm(FileUploadForm):
    kind = forms.ChoiceField(
        choices=[(kind, importer.title) for kind, importer in IMPORTERS.items()],
        help_text="Bring a book in in this order: each file refers to the ones above it.",
    )
    file = forms.FileField(
        help_text=f"CSV (UTF-8) or Excel (.xlsx), at most {ADMIN_MAX_ROWS:,} rows, the first "
        "row naming the columns as in the template."
    )
    schedule = forms.FileField(
        required=False,
        label="Schedule file (loans only)",
        help_text="The loans' own schedules; without it they are generated from the terms.",
    )
    max_bytes = ADMIN_MAX_BYTES

    def preview(self, cleaned: dict, *, file_name: str, content: bytes) -> ImportRun:
        schedule = None
        if cleaned.get("schedule"):
            schedule_file = cleaned["schedule"]
            schedule = (PurePath(schedule_file.name).name, self.read(schedule_file))
        return import_preview(
            kind=cleaned["kind"],
            file_name=file_name,
            content=content,
            schedule=schedule,
            actor=self.actor,
        )


@admin.register(ImportRun)
class ImportRunAdmin(FileImportAdmin, ScopedModelAdmin):
    list_display = [
        "__str__",
        "kind",
        "mode",
        "by",
        "started_at",
        "status",
        "total",
        "created",
        "updated",
        "unchanged",
        "refused",
    ]
    list_filter = ["kind", "status", "dry_run"]
    list_select_related = ["actor", "branch"]
    search_fields = ["file_name"]
    search_help_text = "File name."
    change_form_template = "admin/imports/importrun/detail.html"
    upload_form = ImportUploadForm
    upload_template = "admin/imports/importrun/upload.html"
    upload_title = "Import a file"
    confirm_template = "admin/imports/importrun/confirm.html"
    import_permission = IMPORT_PERMISSION
    template_argument = "kind"
    page_prefix = "run"

    @admin.display(description="run")
    def mode(self, obj: ImportRun) -> str:
        return "preview (dry run)" if obj.dry_run else "import"

    @admin.display(description="by", ordering="actor__username")
    def by(self, obj: ImportRun) -> str:
        return person(obj.actor, NOBODY)

    def get_queryset(self, request):
        return selectors.import_runs_for(request.user)

    # --- Upload and preview -------------------------------------------------------------

    def previewed_message(self, obj: ImportRun) -> tuple[str, int]:
        will = obj.total - obj.refused
        return (
            f"{obj.file_name}: {will:,} of {obj.total:,} row(s) can be imported; nothing is "
            "written until you import them.",
            messages.SUCCESS if will else messages.WARNING,
        )

    def upload_context(self) -> dict:
        return {
            "kinds": [
                (kind, importer.title, importer.header()) for kind, importer in IMPORTERS.items()
            ]
        }

    def template_view(self, request, kind: str):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if kind == "schedule":
            return csv_response([IMPORTERS["loans"].schedule_header()], filename="loan-schedules")
        if kind not in IMPORTERS:
            raise Http404
        return csv_response([IMPORTERS[kind].header()], filename=f"{kind}-template")

    # --- A run's page -------------------------------------------------------------------

    def detail_rows(self, obj: ImportRun, *, problems_only: bool):
        return selectors.import_run_results(obj, problems_only=problems_only)

    def detail_context(self, request, obj: ImportRun, *, may_import: bool) -> dict:
        running = obj.status == ImportRun.Status.RUNNING
        return {
            "run": obj,
            "by": person(obj.actor, NOBODY),
            "can_import": may_import
            and obj.dry_run
            and obj.status == ImportRun.Status.DONE
            and obj.total > obj.refused,
            "can_resume": may_import and not obj.dry_run and running and not import_held(obj),
            "show_progress": not obj.dry_run,
            "show_result_link": True,
            "to_import": obj.total - obj.refused,
            "Status": ImportRowResult.Status,
        }

    def confirm_context(self, request, obj: ImportRun) -> dict:
        return {
            "title": f"Import {obj.file_name}?",
            "run": obj,
            "to_import": obj.total - obj.refused,
            "resume": not obj.dry_run,
        }

    def import_start(self, request, obj: ImportRun) -> ImportRun:
        """A preview's import started, or a run whose worker stopped resumed."""
        if obj.dry_run:
            try:
                return import_start(preview_id=obj.pk, actor=request.user)
            except ImportRun.DoesNotExist as exc:
                raise ApplicationError(str(exc)) from exc
        from .tasks import import_run_task

        import_run_task.delay_on_commit(obj.pk)
        return obj

    def progress(self, obj: ImportRun) -> dict:
        return {
            "status": obj.status,
            "status_label": obj.get_status_display(),
            "max": obj.expected_rows or obj.total,
            "processed": obj.total,
            "percent": obj.percent,
            **obj.counts,
            "done": obj.status == ImportRun.Status.DONE,
        }

    def result_file(self, obj: ImportRun):
        stem = PurePath(obj.file_name).stem[:80] or "import"
        return csv_response([RESULT_HEADER, *import_results(obj)], filename=f"{stem}-result")
