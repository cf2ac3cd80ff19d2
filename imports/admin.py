"""The import screens (/admin/imports/importrun/), for Operations and branch managers
(``imports.add_importrun``; a branch user's rows are limited to their branch):

- the list of runs (a user's own; every run for who sees every branch);
- "Add": choose the kind, upload a CSV or Excel file (and, for loans, their schedules), with
  each kind's template (header row) to download; the preview is a dry run: every row's
  result, nothing written;
- a run's page: the preview's results and "Import…" (a confirmation page), then the
  import's progress bar (a Celery task; the page polls ``progress/``), its counts, and the
  result file (``result/``: line, status, key, field, reason).

The screens call ``imports.services`` and show their refusals on the form.
"""

from __future__ import annotations

from pathlib import PurePath

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.admin_base import ScopedModelAdmin
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

ROWS_PER_PAGE = 200
RESULT_HEADER = ["line", "status", "key", "field", "reason"]


class ImportUploadForm(forms.Form):
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

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.run: ImportRun | None = None

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        upload = cleaned["file"]
        schedule = None
        if cleaned.get("schedule"):
            schedule_file = cleaned["schedule"]
            schedule = (PurePath(schedule_file.name).name, schedule_file.read(ADMIN_MAX_BYTES + 1))
        try:
            self.run = import_preview(
                kind=cleaned["kind"],
                file_name=PurePath(upload.name).name,
                content=upload.read(ADMIN_MAX_BYTES + 1),  # one byte more: too large
                schedule=schedule,
                actor=self.actor,
            )
        except ApplicationError as exc:
            self.add_error("file", ValidationError(exc.message, code=exc.code))
        return cleaned


def person(user) -> str:
    return (user.get_full_name() or user.username) if user else "the system"


@admin.register(ImportRun)
class ImportRunAdmin(ScopedModelAdmin):
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

    @admin.display(description="run")
    def mode(self, obj: ImportRun) -> str:
        return "preview (dry run)" if obj.dry_run else "import"

    @admin.display(description="by", ordering="actor__username")
    def by(self, obj: ImportRun) -> str:
        return person(obj.actor)

    def get_queryset(self, request):
        return selectors.import_runs_for(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the import is a service's work, never an edit

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        views = [
            ("template/<str:kind>/", self.template_view, "template"),
            ("<path:object_id>/import/", self.import_view, "import"),
            ("<path:object_id>/progress/", self.progress_view, "progress"),
            ("<path:object_id>/result/", self.result_view, "result"),
        ]
        return [
            path(route, self.admin_site.admin_view(view), name="{}_{}_{}".format(*info, name))
            for route, view, name in views
        ] + super().get_urls()

    def _context(self, request, title: str, **extra) -> dict:
        request.current_app = self.admin_site.name
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            **extra,
        }

    # --- Upload and preview -------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = ImportUploadForm(
            request.POST if posted else None, request.FILES if posted else None, actor=request.user
        )
        if posted and form.is_valid():
            run = form.run
            will = run.total - run.refused
            self.message_user(
                request,
                f"{run.file_name}: {will:,} of {run.total:,} row(s) can be imported; nothing is "
                "written until you import them.",
                messages.SUCCESS if will else messages.WARNING,
            )
            return redirect("admin:imports_importrun_change", run.pk)
        kinds = [(kind, importer.title, importer.header()) for kind, importer in IMPORTERS.items()]
        context = self._context(request, "Import a file", form=form, kinds=kinds)
        return TemplateResponse(request, "admin/imports/importrun/upload.html", context)

    def template_view(self, request, kind: str):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if kind == "schedule":
            return csv_response([IMPORTERS["loans"].schedule_header()], filename="loan-schedules")
        if kind not in IMPORTERS:
            raise Http404
        return csv_response([IMPORTERS[kind].header()], filename=f"{kind}-template")

    # --- A run's page -------------------------------------------------------------------

    def _visible(self, request, object_id: str) -> ImportRun:
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = self.get_object(request, unquote(object_id))
        if run is None:
            raise Http404
        return run

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, unquote(object_id))
        extra = {}
        if run is not None and self.has_view_permission(request, run):
            extra = self._detail_context(request, run)
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def _detail_context(self, request, run: ImportRun) -> dict:
        problems_only = request.GET.get("rows") == "problems"
        rows = selectors.import_run_results(run, problems_only=problems_only)
        may_import = request.user.has_perm(IMPORT_PERMISSION)
        running = run.status == ImportRun.Status.RUNNING
        return {
            "run": run,
            "by": person(run.actor),
            "rows_page": Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page")),
            "problems_only": problems_only,
            "can_import": may_import
            and run.dry_run
            and run.status == ImportRun.Status.DONE
            and run.total > run.refused,
            "can_resume": may_import and not run.dry_run and running and not import_held(run),
            "to_import": run.total - run.refused,
            "Status": ImportRowResult.Status,
        }

    def import_view(self, request, object_id: str):
        """GET: the confirmation; POST: start (or resume) the import of the preview's file."""
        run = self._visible(request, object_id)
        if not request.user.has_perm(IMPORT_PERMISSION):
            raise PermissionDenied
        detail = reverse("admin:imports_importrun_change", args=[run.pk])
        if request.method == "POST":
            try:
                started = (
                    import_start(preview_id=run.pk, actor=request.user) if run.dry_run else run
                )
                if not run.dry_run:
                    from .tasks import import_run_task

                    import_run_task.delay_on_commit(run.pk)  # resume a run whose worker stopped
            except (ApplicationError, ImportRun.DoesNotExist) as exc:
                self.message_user(request, getattr(exc, "message", str(exc)), messages.ERROR)
                return HttpResponseRedirect(detail)
            self.message_user(request, f"{started}: the import has started.", messages.SUCCESS)
            return redirect("admin:imports_importrun_change", started.pk)
        context = self._context(
            request,
            f"Import {run.file_name}?",
            run=run,
            object=run,
            to_import=run.total - run.refused,
            resume=not run.dry_run,
            detail_url=detail,
        )
        return TemplateResponse(request, "admin/imports/importrun/confirm.html", context)

    def progress_view(self, request, object_id: str):
        run = self._visible(request, object_id)
        return JsonResponse(
            {
                "status": run.status,
                "status_label": run.get_status_display(),
                "max": run.expected_rows or run.total,
                "processed": run.total,
                "percent": run.percent,
                **run.counts,
                "done": run.status == ImportRun.Status.DONE,
            }
        )

    def result_view(self, request, object_id: str):
        run = self._visible(request, object_id)
        stem = PurePath(run.file_name).stem[:80] or "import"
        return csv_response([RESULT_HEADER, *import_results(run)], filename=f"{stem}-result")
