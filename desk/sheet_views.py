"""The collection sheet (``desk:sheet``), inside the admin's frame: per branch and business
date, whom to collect from, with totals, a page at a time; printable (A4 landscape) and
downloadable as CSV or Excel (``?format=csv|xlsx``, every row of the filtered sheet).

Reads only, through ``desk.sheet_selectors``; a row's "Collect" opens the desk's collect
form prefilled, a row the branch collected that day shows its receipt instead.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.template.response import TemplateResponse
from django.urls import reverse

from core.spreadsheets import csv_response, xlsx_response

from .sheet_forms import SheetFilterForm, branch_business_date
from .sheet_selectors import (
    day_collections,
    sheet_export_rows,
    sheet_loans,
    sheet_rows,
    sheet_rows_all,
    sheet_totals,
)

VIEW_PERMISSION = "loans.view_loanaccount"
PAGE_SIZE = 25  # a page is for working through; print and downloads take every row
PRINT_LIMIT = 2000  # rows on a printed sheet; a bigger sheet is narrowed by its filters


def _sheet(request):
    if not request.user.has_perm(VIEW_PERMISSION):
        raise PermissionDenied
    form = SheetFilterForm(request.GET, user=request.user)
    context = {
        **admin.site.each_context(request),
        "title": "Collection sheet",
        "subtitle": None,
        "form": form,
    }
    branch = form.branch_chosen() if form.is_valid() else None
    if branch is None:
        return TemplateResponse(request, "desk/sheet.html", context)
    filters = form.filters(branch)
    context["current_day"] = branch_business_date(branch)
    if not form.data.get("date"):  # show the date the sheet is of in its field
        form.data = form.data.copy()
        form.data["date"] = filters.business_date.isoformat()
    loans = sheet_loans(user=request.user, filters=filters)
    collections = day_collections(
        user=request.user, branch_id=branch.pk, business_date=filters.business_date
    )
    export = request.GET.get("format")
    if export in ("csv", "xlsx"):
        rows = sheet_export_rows(
            sheet_rows_all(user=request.user, loans=loans, collections=collections)
        )
        name = f"collection-sheet-{branch.code}-{filters.business_date:%Y%m%d}"
        if export == "csv":
            return csv_response(rows, filename=name)
        return xlsx_response(rows, filename=name, title="Collection sheet")
    totals = sheet_totals(user=request.user, filters=filters)
    context.update(
        urls={  # reversed once, not per row
            "loans": reverse("admin:loans_loanaccount_changelist"),
            "collect": reverse("desk:collect"),
            "receipt_find": reverse("desk:receipt_find"),
        },
        branch=branch,
        filters=filters,
        totals=totals,
        collections_available=collections.available,
        bucket_label=dict(form.fields["bucket"].choices).get(filters.bucket, ""),
        collector_label=dict(form.fields["collector"].choices).get(filters.collector, ""),
    )
    if request.GET.get("print"):
        rows = sheet_rows(user=request.user, loans=loans[:PRINT_LIMIT], collections=collections)
        context.update(rows=rows, truncated=totals.count > PRINT_LIMIT, print_limit=PRINT_LIMIT)
        return TemplateResponse(request, "desk/sheet_print.html", context)
    paginator = Paginator(loans, PAGE_SIZE)
    paginator.count = totals.count  # the totals counted the sheet already: no second COUNT
    page = paginator.get_page(request.GET.get("p"))
    rows = sheet_rows(user=request.user, loans=page.object_list, collections=collections)
    context.update(page=page, rows=rows)
    return TemplateResponse(request, "desk/sheet.html", context)


sheet = admin.site.admin_view(_sheet)
