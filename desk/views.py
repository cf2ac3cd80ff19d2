"""The branch desk's screens (/desk/), inside the admin's frame: collect a payment (form >
preview > confirm > the receipt), find a loan by number or mobile, the receipt (printable,
PDF; a reprint is marked DUPLICATE and audited) and finding a receipt by number.

Staff only (others go to the admin login); a loan or receipt outside the user's scope is a
404. Writes go through ``desk.services``, whose refusals are field messages of the form.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods

from core.errors import ApplicationError, NotFound

from . import selectors
from .forms import CollectForm, form_token
from .services import CollectInput, desk_collect, receipt_issue_token, receipt_show

COLLECT = "desk.collect_payment"
VIEW_RECEIPT = "desk.view_deskreceipt"


def _need(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def _context(request, title: str, **extra) -> dict[str, Any]:
    return {**admin.site.each_context(request), "title": title, "subtitle": None, **extra}


def collect_url(loan_number: str, amount: Decimal | str | None = None) -> str:
    query = {"loan": loan_number, **({"amount": amount} if amount else {})}
    return f"{reverse('desk:collect')}?{urlencode(query)}"


def _loan_or_404(request):
    try:
        return selectors.loan_for_collect(user=request.user, loan_number=request.GET.get("loan"))
    except NotFound:
        raise Http404("No such loan that you may see.") from None


def _initial_amount(request) -> Decimal | None:
    try:
        amount = Decimal(request.GET.get("amount", ""))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() and amount > 0 else None


@require_http_methods(["GET", "POST"])
def _collect(request):
    _need(request, COLLECT)
    loan = _loan_or_404(request)
    user = request.user
    if request.method == "GET":
        form = CollectForm(
            loan=loan,
            user=user,
            initial={
                "token": form_token(user=user, loan_number=loan.loan_number),
                "amount": _initial_amount(request),
            },
        )
        return _collect_page(request, loan, form, step="form")
    form = CollectForm(request.POST, loan=loan, user=user)
    action = request.POST.get("action")
    if action == "edit" or not form.is_valid():
        if action == "edit":  # back from the preview to change what was entered
            form = CollectForm(loan=loan, user=user, initial=request.POST.dict())
        return _collect_page(request, loan, form, step="form")
    collect = form.collect_input()
    if action != "confirm":
        return _preview_page(request, loan, form, collect)
    try:
        receipt = desk_collect(
            collect=collect,
            idempotency_key=form.idempotency_key,
            duplicate_confirmed=form.cleaned_data["confirm_duplicate"],
            actor=user,
            loan=loan,
        )
    except ApplicationError as exc:
        if exc.field in form.fields:
            form.add_error(exc.field, str(exc))
            if exc.field != "confirm_duplicate":
                return _collect_page(request, loan, form, step="form")
        else:
            form.add_error(None, str(exc))
        return _preview_page(request, loan, form, collect)
    token = receipt_issue_token(receipt=receipt, actor=user)
    return HttpResponseRedirect(f"{reverse('desk:receipt', args=[receipt.pk])}?issued={token}")


def _collect_page(request, loan, form: CollectForm, *, step: str, **extra) -> TemplateResponse:
    context = _context(
        request,
        f"Collect a payment on {loan.loan_number}",
        loan=loan,
        form=form,
        step=step,
        action_url=collect_url(loan.loan_number),
        **extra,
    )
    return TemplateResponse(request, "desk/collect.html", context)


def _preview_page(request, loan, form: CollectForm, collect: CollectInput) -> TemplateResponse:
    preview = selectors.collect_preview(loan=loan, amount=collect.amount)
    try:
        duplicates = selectors.possible_duplicates(
            loan=loan, amount=collect.amount, user=request.user
        )
    except ApplicationError as exc:  # the payments store is down: confirming will say so
        duplicates = []
        form.add_error(None, str(exc))
    return _collect_page(
        request,
        loan,
        form,
        step="preview",
        collect=collect,
        preview=preview,
        duplicates=duplicates,
    )


collect = admin.site.admin_view(_collect)


@require_GET
def _find(request):
    _need(request, COLLECT)
    query = request.GET.get("q", "").strip()
    loans = selectors.loans_find(user=request.user, query=query) if query else []
    if len(loans) == 1:
        return redirect(collect_url(loans[0].loan_number))
    context = _context(
        request,
        "Collect a payment: find the loan",
        query=query,
        loans=[(loan, collect_url(loan.loan_number)) for loan in loans],
    )
    return TemplateResponse(request, "desk/find.html", context)


find = admin.site.admin_view(_find)


@require_GET
def _receipt_find(request):
    _need(request, VIEW_RECEIPT)
    number = request.GET.get("number", "").strip()
    receipt = selectors.receipt_by_number(user=request.user, number=number) if number else None
    if receipt is not None:
        return redirect("desk:receipt", pk=receipt.pk)
    if number:
        messages.error(request, f"No receipt {number[:40]} that you may see.")
    context = _context(request, "Find a receipt", number=number)
    return TemplateResponse(request, "desk/receipt_find.html", context)


receipt_find = admin.site.admin_view(_receipt_find)


@require_GET
def _receipt(request, pk: int):
    _need(request, VIEW_RECEIPT)
    try:
        receipt = selectors.receipt_for_user(user=request.user, receipt_id=pk)
    except NotFound:
        raise Http404("No such receipt that you may see.") from None
    pdf = request.GET.get("format") == "pdf"
    issued = request.GET.get("issued", "")
    duplicate = receipt_show(
        receipt=receipt, actor=request.user, fmt="pdf" if pdf else "html", issue_token=issued
    )
    context = _context(
        request,
        f"Receipt {receipt.receipt_number}",
        receipt=receipt,
        loan=receipt.loan,
        state=selectors.receipt_state(receipt=receipt, user=request.user),
        duplicate=duplicate,
        issued=issued if not duplicate else "",
        lender_name=settings.LENDER_NAME,
    )
    if pdf:
        return _pdf(request, receipt, context)
    return TemplateResponse(request, "desk/receipt.html", context)


def _pdf(request, receipt, context: dict[str, Any]) -> HttpResponse:
    from weasyprint import HTML  # loads its system libraries: only when a PDF is asked for

    html = render_to_string("desk/receipt_pdf.html", context, request=request)
    document = HTML(string=html, base_url=request.build_absolute_uri("/")).write_pdf()
    response = HttpResponse(document, content_type="application/pdf")
    name = receipt.receipt_number.replace("/", "-")
    response["Content-Disposition"] = f'attachment; filename="receipt-{name}.pdf"'
    return response


receipt = admin.site.admin_view(_receipt)
