"""Reconciliation's workflow screens, on the admin's look: a DCR's and a DBS's detail page
(figures, the drill-down to every receipt from DynamoDB, late arrivals, flags, history;
Submit, Approve / Return), the dashboard with charts, the exports of the DCR and DBS
lists (CSV, Excel), the bank statement upload and its matching.

Staff only; a DCR or DBS outside the user's scope is a 404. Every write goes through
``reconciliation.services``, whose refusals are shown as messages.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from approvals.services import decision_refusal, subject_of
from core.decision import DecisionScreen
from core.errors import ApplicationError
from core.spreadsheets import csv_response, xlsx_response

from . import selectors, services
from .exceptions import StatementAlreadyImported, StatementRejected
from .forms import ExportFilterForm, StatementUploadForm
from .models import Dbs, Dcr, Status

logger = logging.getLogger(__name__)

VIEW_DCR = "reconciliation.view_dcr"
VIEW_DBS = "reconciliation.view_dbs"
RECEIPTS_PAGE = 100


def _context(request, title: str, **extra) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, "subtitle": None, **extra}


def _need(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


# --- DCR and DBS: one workflow, two kinds of report ------------------------------------


@dataclass(frozen=True)
class Workflow(DecisionScreen):
    """What differs between the DCR's and the DBS's pages: the rest is the same flow."""

    name: str  # the URL names' prefix and the template's: "dcr", "dbs"
    view_permission: str
    submit_permission: str
    approve_permission: str
    lookup: Callable[..., Any]  # selectors.<name>_for_user(pk=, user=)
    submit: Callable[..., Any]  # services.<name>_submit(<name>_id=, actor=)
    approve: Callable[..., Any]
    reject: Callable[..., Any]
    sections: Callable[[Any, Any], dict[str, Any]]  # (request, obj) -> template context

    @property
    def template_name(self) -> str:
        return f"reconciliation/{self.name}_detail.html"

    def get_object(self, request, pk: int):
        _need(request, self.view_permission)
        obj = self.lookup(pk=pk, user=request.user)
        if obj is None:
            raise Http404(f"No such {self.name.upper()}")
        return obj

    def detail_url(self, obj) -> str:
        return reverse(f"reconciliation:{self.name}", args=[obj.pk])

    def page(self, request, obj) -> dict[str, Any]:
        user = request.user
        pending = obj.status == Status.SUBMITTED
        refusal = pending and decision_refusal(
            subject=subject_of(obj),
            user=user,
            makers=[obj.submitted_by_id],
            what=f"this {obj._meta.verbose_name}",
        )
        return {
            "title": str(obj),
            self.name: obj,
            **self.sections(request, obj),
            "history": list(obj.history.select_related("actor")),
            "decide_url": reverse(f"reconciliation:{self.name}_decide", args=[obj.pk]),
            "pending": pending,
            "may_decide": pending and user.has_perm(self.approve_permission) and not refusal,
            "is_maker": obj.submitted_by_id == user.pk,
            "refusal": refusal or "",
            "may_submit": obj.status in (Status.DRAFT, Status.RETURNED)
            and user.has_perm(self.submit_permission),
        }

    def decide(self, request, obj, *, approve: bool, remarks: str):
        service = self.approve if approve else self.reject
        return service(**{f"{self.name}_id": obj.pk}, actor=request.user, remarks=remarks)

    def decided_message(self, obj, decided, *, approve: bool) -> str:
        return f"{obj}: {'approved' if approve else 'returned'}."

    def submit_view(self, request, pk: int):
        try:
            obj = self.submit(**{f"{self.name}_id": pk}, actor=request.user)
        except ApplicationError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, f"{obj} submitted for approval.")
        return HttpResponseRedirect(reverse(f"reconciliation:{self.name}", args=[pk]))


def _dcr_sections(request, dcr: Dcr) -> dict[str, Any]:
    receipts, receipts_error = None, None
    try:
        receipts = selectors.dcr_receipts(
            dcr=dcr, user=request.user, cursor=request.GET.get("cursor"), limit=RECEIPTS_PAGE
        )
    except ApplicationError as exc:
        receipts_error = str(exc)
    return {
        "lines": selectors.dcr_lines(dcr),
        "late_arrivals": list(dcr.late_arrivals.all()),
        "receipts": receipts,
        "receipts_error": receipts_error,
        "dbs": Dbs.objects.filter(branch_id=dcr.branch_id, business_date=dcr.business_date).first(),
    }


def _dbs_sections(request, dbs: Dbs) -> dict[str, Any]:
    return {"deposits": selectors.deposits_with_match(dbs)}


DCR = Workflow(
    name="dcr",
    view_permission=VIEW_DCR,
    submit_permission=services.SUBMIT_DCR,
    approve_permission=services.APPROVE_DCR,
    lookup=selectors.dcr_for_user,
    submit=services.dcr_submit,
    approve=services.dcr_approve,
    reject=services.dcr_return,
    sections=_dcr_sections,
)
DBS = Workflow(
    name="dbs",
    view_permission=VIEW_DBS,
    submit_permission=services.SUBMIT_DBS,
    approve_permission=services.APPROVE_DBS,
    lookup=selectors.dbs_for_user,
    submit=services.dbs_submit,
    approve=services.dbs_approve,
    reject=services.dbs_return,
    sections=_dbs_sections,
)


@staff_member_required
def dcr_detail(request, pk: int):
    return DCR.detail(request, pk)


@staff_member_required
@require_POST
def dcr_decide(request, pk: int):
    return DCR.post(request, pk)


@staff_member_required
@require_POST
def dcr_submit(request, pk: int):
    return DCR.submit_view(request, pk)


@staff_member_required
def dbs_detail(request, pk: int):
    return DBS.detail(request, pk)


@staff_member_required
@require_POST
def dbs_decide(request, pk: int):
    return DBS.post(request, pk)


@staff_member_required
@require_POST
def dbs_submit(request, pk: int):
    return DBS.submit_view(request, pk)


@staff_member_required
def deposit_slip(request, pk: int):
    """The scan of a deposit slip, for users who may see the deposit's branch."""
    _need(request, "reconciliation.view_deposit")
    deposit = get_object_or_404(selectors.deposits_visible(user=request.user), pk=pk)
    if not deposit.slip_scan:
        raise Http404("No scan")
    return FileResponse(deposit.slip_scan.open("rb"), as_attachment=False)


# --- Dashboard and exports ---------------------------------------------------------------


@staff_member_required
def dashboard(request):
    _need(request, VIEW_DCR)
    today = timezone.localdate()
    data = selectors.dashboard_data(user=request.user, today=today)
    charts = {
        "per_day": data["per_day"],
        "today": data["today"],
        "cash": data["cash"],
        "pending": data["pending"],
        "not_submitted": data["not_submitted_chart"],
    }
    context = _context(request, "Collections dashboard", today=today, data=data, charts=charts)
    return TemplateResponse(request, "reconciliation/dashboard.html", context)


def _export_filters(params: ExportFilterForm, queryset):
    data = params.cleaned_data
    if data["from"]:
        queryset = queryset.filter(business_date__gte=data["from"])
    if data["to"]:
        queryset = queryset.filter(business_date__lte=data["to"])
    if data["status"] in Status.values:
        queryset = queryset.filter(status=data["status"])
    if data["branch"]:
        queryset = queryset.filter(branch__code=data["branch"].upper())
    if not data["from"] and not data["to"]:
        queryset = queryset.filter(
            business_date__gte=timezone.localdate() - datetime.timedelta(days=30)
        )
    return queryset


@staff_member_required
def export(request, kind: str, fmt: str):
    """The DCR or DBS list the user may see (last 30 days unless ``from``/``to``), as CSV
    or Excel. A bad filter (a date that is not YYYY-MM-DD, a branch that is not a branch
    code) is a 400 saying which."""
    if kind not in ("dcr", "dbs"):
        raise Http404
    _need(request, VIEW_DCR if kind == "dcr" else VIEW_DBS)
    params = ExportFilterForm(request.GET)
    if not params.is_valid():
        return HttpResponseBadRequest(
            f"Not exported: {params.problem()}.", content_type="text/plain; charset=utf-8"
        )
    if kind == "dcr":
        rows = selectors.dcr_export_rows(
            _export_filters(params, selectors.dcrs_visible(user=request.user))
        )
    else:
        rows = selectors.dbs_export_rows(
            _export_filters(params, selectors.dbss_visible(user=request.user))
        )
    name = f"{kind}-{timezone.localdate():%Y%m%d}"
    if fmt == "csv":
        return csv_response(rows, filename=name)
    if fmt == "xlsx":
        return xlsx_response(rows, filename=name, title=kind.upper())
    raise Http404


# --- Bank statements -------------------------------------------------------------------


@staff_member_required
def statement_upload(request):
    _need(request, services.ADD_STATEMENT)
    errors: list[tuple[int, str]] = []
    refused = False
    if request.method == "POST":
        form = StatementUploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                upload = services.statement_upload(
                    collection_account_id=form.cleaned_data["collection_account"].pk,
                    file=form.cleaned_data["file"],
                    actor=request.user,
                )
            except StatementRejected as exc:
                messages.error(request, str(exc))
                errors = exc.errors
            except StatementAlreadyImported as exc:
                form.add_error("file", str(exc))
                refused = True
            except ApplicationError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(
                    request, f"{upload.line_count} line(s) imported from {upload.file_name}."
                )
                return HttpResponseRedirect(reverse("reconciliation:statement", args=[upload.pk]))
    else:
        form = StatementUploadForm()
    context = _context(request, "Upload a bank statement", form=form, errors=errors)
    return TemplateResponse(
        request,
        "reconciliation/statement_upload.html",
        context,
        status=400 if errors or refused else 200,
    )


@staff_member_required
def statement_detail(request, pk: int):
    _need(request, "reconciliation.view_statementupload")
    upload = get_object_or_404(
        selectors.statement_uploads_visible(user=request.user).select_related(
            "collection_account__partner", "uploaded_by"
        ),
        pk=pk,
    )
    lines = list(upload.lines.select_related("matched_deposit__branch"))
    context = _context(
        request,
        str(upload),
        upload=upload,
        matched=[line for line in lines if line.matched_deposit_id],
        unmatched_lines=[line for line in lines if not line.matched_deposit_id],
        notes=selectors.statement_line_notes(upload),
        unmatched_deposits=selectors.statement_unmatched_deposits(upload),
    )
    return TemplateResponse(request, "reconciliation/statement_detail.html", context)
