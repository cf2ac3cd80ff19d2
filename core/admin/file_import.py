"""The one file-import admin: upload a file, see every row's result (a dry run: nothing
written), import it behind a confirmation page, follow the import's progress (a Celery
task; the page polls ``progress/``), download the result file (``result/``).

An app's admin builds on :class:`FileImportAdmin` (before its ModelAdmin base, e.g.
``class BulkUploadAdmin(FileImportAdmin, ScopedModelAdmin)``) and says what is its own: the
upload form (a :class:`FileUploadForm` whose ``preview()`` calls the app's service), the
templates, the import's start, the confirmation's and the progress's figures, the result
file. The imports' runs and the bulk repayment uploads use it; the pages share
``admin/file_import/`` (the frame and crumbs, the detail page's progress and rows).
"""

from __future__ import annotations

from pathlib import PurePath

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.errors import ApplicationError

from .base import admin_page_context


def person(user, nobody: str = "") -> str:
    """A user as the import pages name them; ``nobody`` when there is none."""
    return (user.get_full_name() or user.username) if user else nobody


class FileUploadForm(forms.Form):
    """A file (and what a subclass adds) checked by the app's preview service in
    ``clean()``; its refusal is the file field's error. The preview's object: ``result``."""

    max_bytes: int  # read one byte more: the service refuses a file too large

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.result = None

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        upload = cleaned["file"]
        try:
            self.result = self.preview(
                cleaned, file_name=PurePath(upload.name).name, content=self.read(upload)
            )
        except ApplicationError as exc:  # the file refused, or the stores down
            self.add_error("file", ValidationError(exc.message, code=exc.code))
        return cleaned

    def read(self, upload) -> bytes:
        return upload.read(self.max_bytes + 1)

    def preview(self, cleaned: dict, *, file_name: str, content: bytes):
        raise NotImplementedError


class FileImportAdmin:
    """The upload, preview, import, progress and result views; see the module."""

    upload_form: type[FileUploadForm]
    upload_template: str
    upload_title: str
    confirm_template: str
    import_permission: str
    template_argument = "name"  # the template download's URL: template/<str:name>/
    page_prefix: str  # the detail page's element ids: #<prefix>-summary, -bar, -rows...
    problem_rows = "refused rows"  # what "?rows=problems" shows
    rows_per_page = 200

    # --- What an app says --------------------------------------------------------------

    def previewed_message(self, obj) -> tuple[str, int]:
        """The message after a preview, and its level."""
        raise NotImplementedError

    def upload_context(self) -> dict:
        return {}

    def template_view(self, request, **kwargs) -> HttpResponse:
        """The template to download (a header row)."""
        raise NotImplementedError

    def detail_context(self, request, obj, *, may_import: bool) -> dict:
        """The detail page's own context; ``show_progress`` and ``can_resume`` among it."""
        raise NotImplementedError

    def detail_rows(self, obj, *, problems_only: bool):
        raise NotImplementedError

    def confirm_context(self, request, obj) -> dict | None:
        """The confirmation page's context (its ``title`` too), or None: nothing to import."""
        raise NotImplementedError

    def import_start(self, request, obj):
        """Start (or resume) the import; the object whose page follows it. Raises
        ApplicationError when it cannot start."""
        raise NotImplementedError

    def progress(self, obj) -> dict:
        raise NotImplementedError

    def result_file(self, obj) -> HttpResponse:
        raise NotImplementedError

    # --- The views ---------------------------------------------------------------------

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # the import is a service's work, never an edit

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        views = [
            (f"template/<str:{self.template_argument}>/", self.template_view, "template"),
            ("<path:object_id>/import/", self.import_view, "import"),
            ("<path:object_id>/progress/", self.progress_view, "progress"),
            ("<path:object_id>/result/", self.result_view, "result"),
        ]
        return [
            path(route, self.admin_site.admin_view(view), name="{}_{}_{}".format(*info, name))
            for route, view, name in views
        ] + super().get_urls()

    def detail_url(self, obj) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[obj.pk])

    def page_context(self, request, title: str, **extra) -> dict:
        """The admin's context for one of this screen's pages."""
        return admin_page_context(self, request, title, **extra)

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        posted = request.method == "POST"
        form = self.upload_form(
            request.POST if posted else None, request.FILES if posted else None, actor=request.user
        )
        if posted and form.is_valid():
            self.message_user(request, *self.previewed_message(form.result))
            return redirect(self.detail_url(form.result))
        context = self.page_context(request, self.upload_title, form=form, **self.upload_context())
        return TemplateResponse(request, self.upload_template, context)

    def visible(self, request, object_id: str):
        """The object, when the user may see it (403 without the view permission, 404 out
        of their scope)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        return obj

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, unquote(object_id))
        extra = {}
        if obj is not None and self.has_view_permission(request, obj):
            problems_only = request.GET.get("rows") == "problems"
            rows = self.detail_rows(obj, problems_only=problems_only)
            rows_page = Paginator(rows, self.rows_per_page).get_page(request.GET.get("page"))
            may_import = request.user.has_perm(self.import_permission)
            extra = {
                # the page's "finished" state from this read of the object, the one its
                # figures come from (the admin reads it again, maybe after the worker's end)
                "finished": obj.status == "DONE",
                "prefix": self.page_prefix,
                "problem_rows": self.problem_rows,
                "problems_only": problems_only,
                "rows_page": rows_page,
                **self.detail_context(request, obj, may_import=may_import),
            }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def import_view(self, request, object_id: str):
        """GET: the confirmation; POST: start (or resume) the import."""
        obj = self.visible(request, object_id)
        if not request.user.has_perm(self.import_permission):
            raise PermissionDenied
        detail = self.detail_url(obj)
        if request.method == "POST":
            try:
                started = self.import_start(request, obj)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                return HttpResponseRedirect(detail)
            self.message_user(request, f"{started}: the import has started.", messages.SUCCESS)
            return redirect(self.detail_url(started))
        context = self.confirm_context(request, obj)
        if context is None:
            self.message_user(request, f"{obj}: nothing to import now.", messages.INFO)
            return HttpResponseRedirect(detail)
        context = self.page_context(request, object=obj, detail_url=detail, **context)
        return TemplateResponse(request, self.confirm_template, context)

    def progress_view(self, request, object_id: str):
        return JsonResponse(self.progress(self.visible(request, object_id)))

    def result_view(self, request, object_id: str):
        return self.result_file(self.visible(request, object_id))
