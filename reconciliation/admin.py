"""Reconciliation in the admin: DCRs and DBSs (read-only figures; Build, Refresh and Submit
through the services; deciding happens on the workflow pages), deposits (branch staff add
them for their own branch), bank statements and the daily job runs (head office only)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.admin_base import HeadOfficeAdmin, ScopedModelAdmin, ScopedRelatedFilter
from core.admin.base import money_column
from core.errors import ApplicationError

from . import selectors, services
from .forms import BuildForm, DepositForm
from .models import Dbs, Dcr, DcrLine, Deposit, LateArrival, StatementUpload

SYNC_BUILD_LIMIT = 62  # branch-days built in the request; more go to a Celery task


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class DcrLineInline(ReadOnlyInline):
    model = DcrLine
    fields = readonly_fields = ["dimension", "key", "count", "amount"]


class LateArrivalInline(ReadOnlyInline):
    model = LateArrival
    fields = readonly_fields = [
        "txn_id", "kind", "mode", "status", "collector", "amount", "detected_at", "resolved_at",
    ]  # fmt: skip


class WorkflowAdmin(ScopedModelAdmin):
    """Figures and status are read-only: they change only through the services."""

    workflow_url_name = ""
    date_hierarchy = "business_date"
    list_filter = ["status", ("branch", ScopedRelatedFilter)]
    search_fields = ["branch__code"]
    list_select_related = ["branch", "submitted_by", "decided_by"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # actions run all the same: the services check their permissions

    @admin.display(description="workflow page")
    def workflow_link(self, obj):
        return format_html('<a href="{}">open</a>', reverse(self.workflow_url_name, args=[obj.pk]))

    def _each(self, request, queryset, service, verb: str, **kwargs) -> None:
        done = 0
        for obj in queryset:
            try:
                service(obj, **kwargs)
            except ApplicationError as exc:
                self.message_user(request, f"{obj}: {exc}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, f"{done} {verb}.", messages.SUCCESS)


@admin.register(Dcr)
class DcrAdmin(WorkflowAdmin):
    workflow_url_name = "reconciliation:dcr"
    change_list_template = "admin/reconciliation/dcr/change_list.html"
    list_display = [
        "branch", "business_date", "status", "is_provisional", "collected_count",
        money_column("collected_amount", "collected"), money_column("cash_amount", "cash"),
        "excluded_count", "late", "submitted_by", "decided_by", "workflow_link",
    ]  # fmt: skip
    list_filter = ["status", "is_provisional", ("branch", ScopedRelatedFilter)]
    fields = readonly_fields = [
        "branch", "business_date", "status", "is_provisional", "collected_count",
        "collected_amount", "cash_amount", "excluded_count", "excluded_amount",
        "computed_at", "read_started_at", "submitted_by", "submitted_at", "decided_by",
        "decided_at", "remarks", "workflow_link",
    ]  # fmt: skip
    inlines = [DcrLineInline, LateArrivalInline]
    actions = ["refresh", "submit"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .defer("txn_ids", "excluded_txn_ids")
            .annotate(
                late_count=Count("late_arrivals", filter=Q(late_arrivals__resolved_at__isnull=True))
            )
        )

    @admin.display(description="late arrivals", ordering="late_count")
    def late(self, obj):
        return obj.late_count

    @admin.action(description="Refresh selected DCRs from DynamoDB")
    def refresh(self, request, queryset):
        if not request.user.has_perm(services.BUILD_DCR):
            self.message_user(request, "You may not build DCRs.", messages.ERROR)
            return
        report = services.dcr_build_many(
            pairs=list(queryset.values_list("branch_id", "business_date"))
        )
        self._report(request, report)

    @admin.action(description="Submit selected DCRs")
    def submit(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda dcr: services.dcr_submit(dcr_id=dcr.pk, actor=request.user),
            "submitted",
        )

    def _report(self, request, report) -> None:
        self.message_user(
            request,
            f"{report.written} DCR(s) built, {report.frozen} submitted or approved left as "
            f"they are ({report.late_arrivals} new late arrival(s)), "
            f"{report.transactions} transaction(s) read.",
            messages.SUCCESS if not report.failed else messages.WARNING,
        )
        for (branch_id, day), exc in report.failed.items():
            self.message_user(
                request, f"Branch {branch_id} {day}: {str(exc).splitlines()[0]}", messages.ERROR
            )

    def get_urls(self):
        return [
            path(
                "build/",
                self.admin_site.admin_view(self.build_view),
                name="reconciliation_dcr_build",
            ),
            *super().get_urls(),
        ]

    def build_view(self, request):
        """Build/refresh DCRs for a date (or a range), one branch or all the user sees."""
        if not request.user.has_perm(services.BUILD_DCR):
            self.message_user(request, "You may not build DCRs.", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:reconciliation_dcr_changelist"))
        branches = selectors.branches_visible(user=request.user).filter(is_active=True)
        form = BuildForm(request.POST or None, branches=branches)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            branch_ids = [data["branch"].pk] if data["branch"] else None
            date_to = data["date_to"] or data["date_from"]
            count = (1 if branch_ids else branches.count()) * (
                (date_to - data["date_from"]).days + 1
            )
            try:
                if count > SYNC_BUILD_LIMIT:
                    self._build_later(request, data["date_from"], date_to, branch_ids, branches)
                else:
                    report = services.dcr_build_range(
                        date_from=data["date_from"],
                        date_to=date_to,
                        branch_ids=branch_ids,
                        actor=request.user,
                    )
                    self._report(request, report)
            except ApplicationError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(reverse("admin:reconciliation_dcr_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Build or refresh DCRs",
            "subtitle": None,
            "opts": self.opts,
            "form": form,
        }
        return TemplateResponse(request, "admin/reconciliation/dcr/build.html", context)

    def _build_later(self, request, date_from, date_to, branch_ids, branches) -> None:
        from django.db import transaction

        from .tasks import dcr_build_range_task

        ids = branch_ids or list(branches.values_list("pk", flat=True))
        transaction.on_commit(
            lambda: dcr_build_range_task.delay(date_from.isoformat(), date_to.isoformat(), ids)
        )
        self.message_user(
            request,
            f"Building {len(ids)} branch(es) from {date_from} to {date_to} in the background.",
            messages.INFO,
        )


@admin.register(Dbs)
class DbsAdmin(WorkflowAdmin):
    workflow_url_name = "reconciliation:dbs"
    change_list_template = "admin/reconciliation/dbs/change_list.html"
    list_display = [
        "branch", "business_date", "status", money_column("opening_cash"),
        money_column("cash_collected"), money_column("deposits_total"),
        money_column("closing_cash"), money_column("cash_limit"), "flag_list", "submitted_by",
        "decided_by", "workflow_link",
    ]  # fmt: skip
    fields = readonly_fields = [
        "branch", "business_date", "status", "opening_cash", "cash_collected",
        "deposits_total", "deposit_count", "closing_cash", "cash_limit", "flag_list",
        "computed_at", "submitted_by", "submitted_at", "decided_by", "decided_at",
        "remarks", "workflow_link",
    ]  # fmt: skip
    actions = ["refresh", "submit"]

    @admin.display(description="flags")
    def flag_list(self, obj):
        return ", ".join(obj.flag_codes) or "—"

    @admin.action(description="Recompute selected DBSs")
    def refresh(self, request, queryset):
        if not request.user.has_perm(services.BUILD_DCR):
            self.message_user(request, "You may not recompute reports.", messages.ERROR)
            return
        self._each(
            request,
            queryset,
            lambda dbs: services.dbs_refresh(
                branch_id=dbs.branch_id, business_date=dbs.business_date
            ),
            "recomputed (submitted and approved ones stay as they are)",
        )

    @admin.action(description="Submit selected DBSs")
    def submit(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda dbs: services.dbs_submit(dbs_id=dbs.pk, actor=request.user),
            "submitted",
        )


@admin.register(Deposit)
class DepositAdmin(ScopedModelAdmin):
    form = DepositForm
    list_display = [
        "deposit_date", "branch", "collection_account", "slip_number",
        money_column("amount"), "has_scan", "recorded_by", "matched",
    ]  # fmt: skip
    list_select_related = ["branch", "collection_account__partner", "recorded_by", "statement_line"]
    list_filter = [("branch", ScopedRelatedFilter), "deposit_date"]
    search_fields = ["=slip_number"]
    date_hierarchy = "deposit_date"
    autocomplete_fields = ["branch"]
    readonly_fields = ["recorded_by", "recorded_at"]

    @admin.display(description="scan", boolean=True)
    def has_scan(self, obj):
        return bool(obj.slip_scan)

    @admin.display(description="in a statement", boolean=True)
    def matched(self, obj):
        try:
            return obj.statement_line is not None
        except Deposit.statement_line.RelatedObjectDoesNotExist:
            return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        scan = data.get("slip_scan")
        if change:
            changes = {
                "deposit_date": data["deposit_date"],
                "collection_account_id": data["collection_account"].pk,
                "slip_number": data["slip_number"],
                "amount": data["amount"],
            }
            if "slip_scan" in form.changed_data:
                changes["slip_scan"] = scan or ""
            saved = services.deposit_update(deposit_id=obj.pk, actor=request.user, **changes)
        else:
            saved = services.deposit_record(
                actor=request.user,
                branch_id=data["branch"].pk,
                deposit_date=data["deposit_date"],
                collection_account_id=data["collection_account"].pk,
                slip_number=data["slip_number"],
                amount=data["amount"],
                slip_scan=scan or None,
            )
        obj.pk, obj.slip_scan = saved.pk, saved.slip_scan

    def delete_model(self, request, obj):
        services.deposit_delete(deposit_id=obj.pk, actor=request.user)

    def delete_queryset(self, request, queryset):
        for deposit in queryset:
            services.deposit_delete(deposit_id=deposit.pk, actor=request.user)


@admin.register(StatementUpload)
class StatementUploadAdmin(HeadOfficeAdmin):
    list_display = [
        "uploaded_at", "file_name", "collection_account", "line_count", "first_date",
        "last_date", "matched_count", "uploaded_by", "matching_link",
    ]  # fmt: skip
    list_select_related = ["collection_account__partner", "uploaded_by"]
    fields = readonly_fields = list_display

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(matched=Count("lines", filter=Q(lines__matched_deposit__isnull=False)))
        )

    @admin.display(description="matched lines")
    def matched_count(self, obj):
        return obj.matched

    @admin.display(description="matching")
    def matching_link(self, obj):
        return format_html(
            '<a href="{}">open</a>', reverse("reconciliation:statement", args=[obj.pk])
        )

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("reconciliation:statement_upload"))
