"""Staff screens of mandates.

- Mandates: a scoped list (masked account numbers), added through ``mandate_create``;
  a draft's details can be changed, anything later is read-only. Actions: submit for
  approval, send to the bank, resume, each through its service with a message per mandate.
  The change page shows the history and the scheduled presentations (inlines), the
  executions from DynamoDB, a link to the review page while it waits for approval, and the
  "Ask to suspend / cancel" form (maker-checker through the approvals inbox).
- Bank holidays: saving or deleting one moves the scheduled presentations
  (``presentations_reschedule``) and says how many moved.
- Return-code policies (Operations edit them), the sandbox partner's bounce rules.
- Read-only: scheduled presentations, batches, daily runs, results. The results list
  leads to the partner response-file upload (needs ``mandates.add_executionresult``).

Importing this module (the admin does, at start-up) imports ``mandates.selectors``, which
registers the mandates source of the approvals inbox.
"""

from __future__ import annotations

import logging
import re

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.contenttypes.admin import GenericTabularInline
from django.contrib.contenttypes.forms import BaseGenericInlineFormSet
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html
from pynamodb.exceptions import PynamoDBException

from accounts.admin_base import HeadOfficeAdmin, ScopedModelAdmin, ScopedRelatedFilter
from audit.admin import AuditHistoryAdminMixin
from core.admin.approval_request import ApprovalRequestPage
from core.admin.base import BackOfficeModelAdmin, ReadOnlyAdminMixin, money_column
from core.errors import ApplicationError
from core.models import StatusChange
from core.templatetags.formats import day, person
from loans.models import BankingPartner

from . import selectors, services
from .api.results import outcome_counts, results_apply
from .forms import (
    MANDATE_FIELDS,
    MandateForm,
    ResponseFileForm,
    SandboxBounceRuleForm,
    StopRequestForm,
)
from .models import (
    BankHoliday,
    ExecutionResult,
    Mandate,
    PresentationBatch,
    ReturnCodePolicy,
    SandboxBounceRule,
    ScheduledPresentation,
)

logger = logging.getLogger(__name__)

S = Mandate.Status
LOAN_NUMBER = re.compile(r"^LN\d{10}$")
UPLOAD_PERMISSION = "mandates.add_executionresult"
STOP_PERMISSION = "mandates.request_mandate_stop"
STORE_DOWN = "The executions store (DynamoDB) is unavailable; try again shortly."
RECORD_FIELDS = ["status", "umrn", "created_by", "maker", "checker", "status_changed_at"]


# --- Mandates -----------------------------------------------------------------------------


class StopRequestPage(ApprovalRequestPage):
    """The mandate's "Ask to suspend / cancel": its form is on the change page; this page shows
    it again when it is not valid. Operations approves the request."""

    url_path = "stop-request"
    url_name = "stop_request"
    form_class = StopRequestForm
    permission = STOP_PERMISSION
    post_only = True
    form_id = "stop-request-form"
    submit_label = "Ask"
    requested_message = (
        'The {what} was requested; it waits for a checker (<a href="{url}">request #{pk}</a>).'
    )
    refused_message = "Not requested: {error}"

    def request_approval(self, request, obj, form):
        return services.mandate_stop_request(
            mandate_id=obj.pk,
            action=form.cleaned_data["action"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
        )

    def what(self, form) -> str:
        return "suspension" if form.cleaned_data["action"] == "SUSPEND" else "cancellation"

    def title(self, obj) -> str:
        return f"Ask to suspend or cancel mandate {obj.pk}"

    def crumb(self, obj) -> str:
        return "Ask to suspend or cancel"

    def context(self, request, obj, form) -> dict:
        return {
            "intro": format_html(
                "Mandate {} on loan <strong>{}</strong> is {}. Suspending or cancelling it "
                "stops its debits once Operations approves the request.",
                obj.pk,
                obj.loan.loan_number,
                obj.get_status_display().lower(),
            ),
            "mandate": obj,
            "stop_form": form,  # the change page's name for the form
        }


class TransitionFormSet(BaseGenericInlineFormSet):
    @classmethod
    def get_default_prefix(cls) -> str:
        return "transitions"  # the page's form names as before the history moved to core


class TransitionInline(ReadOnlyAdminMixin, GenericTabularInline):
    """The mandate's moves (``core.StatusChange`` rows): seen by whoever may see the mandate."""

    model = StatusChange
    formset = TransitionFormSet
    extra = 0
    can_delete = False
    verbose_name = "move"
    verbose_name_plural = "history"
    fields = readonly_fields = ["at", "from_status", "to_status", "by", "remarks"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description="by")
    def by(self, obj):
        return person(obj.actor)

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("mandates.view_mandate")


class PresentationInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = ScheduledPresentation
    extra = 0
    can_delete = False
    verbose_name_plural = "scheduled presentations"
    fields = readonly_fields = [
        "due_date",
        "presentation_date",
        "amount",
        "attempts",
        "status",
        "last_return_code",
        "pre_debit_notified_at",
    ]


@admin.register(Mandate)
class MandateAdmin(ScopedModelAdmin):
    form = MandateForm
    # Fits a 1366 px window beside the sidebar and the filters: the payer under the loan,
    # the UMRN under the status, the account by its last digits.
    list_display = [
        "id",
        "loan_payer",
        "bank_account",
        "kind",
        money_column("max_amount", "max amount"),
        "status_umrn",
        "created",
    ]
    list_display_links = ["id", "loan_payer"]
    list_select_related = ["loan", "payer", "banking_partner"]
    list_filter = [
        "status",
        "mandate_type",
        "banking_partner",
        ("loan__branch", ScopedRelatedFilter),
    ]
    search_fields = ["=umrn"]  # see get_search_results: exact keys only
    search_help_text = "Loan number, UMRN or mandate id (exact)."
    sortable_by = ["id", "created"]
    autocomplete_fields = ["loan", "payer"]
    inlines = [TransitionInline, PresentationInline]
    actions = ["submit_for_approval", "send_to_bank", "resume"]

    @admin.display(description="loan, payer")
    def loan_payer(self, obj):
        return format_html(
            '{}<br><span class="mini quiet">{}</span>', obj.loan.loan_number, obj.payer.name
        )

    @admin.display(description="bank a/c")
    def bank_account(self, obj):
        return format_html(
            '{}<br><span class="mini quiet">…{}</span>',
            obj.banking_partner.code,
            obj.account_number[-4:],
        )

    @admin.display(description="type")
    def kind(self, obj):
        return obj.get_mandate_type_display()

    @admin.display(description="status, UMRN")
    def status_umrn(self, obj):
        return format_html(
            '{}<br><span class="mini quiet">{}</span>', obj.get_status_display(), obj.umrn or ""
        )

    @admin.display(description="created", ordering="created_at")
    def created(self, obj):
        return day(obj.created_at)

    @admin.display(description="account number")
    def account_number_masked(self, obj):
        return obj.account_number_masked

    # --- Forms

    def get_fields(self, request, obj=None):
        if obj is None:
            return MANDATE_FIELDS
        if obj.status == S.DRAFT:
            return [*MANDATE_FIELDS, *RECORD_FIELDS]
        shown = ["account_number_masked" if f == "account_number" else f for f in MANDATE_FIELDS]
        return [*shown, *RECORD_FIELDS]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        if obj.status == S.DRAFT:
            return RECORD_FIELDS
        return self.get_fields(request, obj)

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "banking_partner":
            kwargs["queryset"] = BankingPartner.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a mandate's history stays; a draft nobody wants is left as it is

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.actor = request.user  # a class made for this request (modelform_factory)
        return form

    def save_model(self, request, obj, form, change):
        if change:
            # Made already: MandateForm, once valid, changed the draft through
            # mandate_update (which locks the row and records the editor, who then may
            # not approve the mandate), so a refusal showed on the form.
            return None
        created = services.mandate_create(
            actor=request.user, **{name: form.cleaned_data[name] for name in MANDATE_FIELDS}
        )
        obj.pk = created.pk
        obj.created_by = created.created_by

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        if LOAN_NUMBER.match(term):
            return queryset.filter(loan__loan_number=term), False
        if term.isdigit() and len(term) <= 10:
            return queryset.filter(pk=int(term)), False
        return queryset.filter(umrn=term), False

    # --- Actions (each through its service; a refusal is a message about that mandate)

    def has_submit_permission(self, request) -> bool:
        return request.user.has_perm("mandates.submit_mandate")

    def has_send_permission(self, request) -> bool:
        return request.user.has_perm("mandates.send_mandate_to_bank")

    def has_resume_permission(self, request) -> bool:
        return request.user.has_perm("mandates.approve_mandate_stop")

    @admin.action(description="Submit selected mandates for approval", permissions=["submit"])
    def submit_for_approval(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda m: services.mandate_submit(mandate_id=m.pk, actor=request.user),
            "submitted for approval",
        )

    @admin.action(description="Send selected mandates to the bank", permissions=["send"])
    def send_to_bank(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda m: services.mandate_send_to_bank(mandate_id=m.pk, actor=request.user),
            "sent to the bank",
        )

    @admin.action(description="Resume selected suspended mandates", permissions=["resume"])
    def resume(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda m: services.mandate_resume(mandate_id=m.pk, actor=request.user),
            "resumed",
        )

    def _each(self, request, queryset, fn, done_text: str) -> None:
        done = []
        for mandate in queryset.select_related("loan").order_by("pk"):
            try:
                result = fn(mandate)
            except ApplicationError as exc:
                self.message_user(request, f"{mandate}: {exc}", messages.ERROR)
            else:
                done.append(result)
        if done:
            outcome = ", ".join(f"{m.pk} ({m.get_status_display().lower()})" for m in done)
            self.message_user(
                request, f"{len(done)} mandate(s) {done_text}: {outcome}.", messages.SUCCESS
            )

    # --- The change page: executions, review link, suspend / cancel request

    def get_urls(self):
        return [StopRequestPage(self).url(), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        mandate = self.get_object(request, unquote(object_id))
        extra = {}
        if mandate is not None:
            extra = {
                "mandate": mandate,
                "review_url": selectors.mandate_review_url(mandate),
                "pending_stop": selectors.mandate_pending_stop_request(mandate=mandate),
                "can_request_stop": self._may_request_stop(request, mandate),
                "stop_form": StopRequestForm(),
                **self._executions(request, mandate),
            }
            if mandate.status != S.DRAFT:
                extra.update(
                    show_save=False, show_save_and_continue=False, show_save_and_add_another=False
                )
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def _executions(self, request, mandate: Mandate) -> dict:
        if mandate.umrn is None:
            return {"executions": None}
        try:
            return {"executions": selectors.mandate_executions(mandate=mandate)}
        except PynamoDBException:
            logger.warning("executions of mandate %s: DynamoDB failed", mandate.pk, exc_info=True)
            return {"executions": None, "executions_error": STORE_DOWN}

    def _may_request_stop(self, request, mandate: Mandate) -> bool:
        page = StopRequestPage(self)
        return page.has_permission(request, mandate) and mandate.status in {S.ACTIVE, S.SUSPENDED}


# --- Calendar and policies ----------------------------------------------------------------


@admin.register(BankHoliday)
class BankHolidayAdmin(AuditHistoryAdminMixin, BackOfficeModelAdmin):
    """Presentations never fall on a bank holiday: any change moves the scheduled ones."""

    list_display = ["date", "name"]
    list_filter = [("date", admin.DateFieldListFilter)]
    search_fields = ["name"]
    date_hierarchy = "date"

    def save_model(self, request, obj, form, change):
        saved, moved = services.bank_holiday_save(
            holiday_id=obj.pk if change else None, actor=request.user, **form.cleaned_data
        )
        obj.pk = saved.pk
        self._rescheduled(request, moved)

    def delete_model(self, request, obj):
        self._rescheduled(
            request, services.bank_holidays_delete(holiday_ids=[obj.pk], actor=request.user)
        )

    def delete_queryset(self, request, queryset):
        moved = services.bank_holidays_delete(
            holiday_ids=list(queryset.values_list("pk", flat=True)), actor=request.user
        )
        self._rescheduled(request, moved)

    def _rescheduled(self, request, moved: int) -> None:
        self.message_user(
            request,
            f"Scheduled presentations rescheduled for the bank holidays: {moved} moved.",
            messages.INFO,
        )


@admin.register(ReturnCodePolicy)
class ReturnCodePolicyAdmin(AuditHistoryAdminMixin, BackOfficeModelAdmin):
    """What each NACH return code does: edited by Operations (``mandates.change_...``)."""

    list_display = [
        "code",
        "description",
        "retryable",
        "mandate_action",
        "max_presentations",
        "retry_after_days",
    ]
    list_filter = ["retryable", "mandate_action"]
    search_fields = ["=code", "description"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # a bounce with a deleted code could not be applied any more

    def get_readonly_fields(self, request, obj=None):
        return ["code"] if obj is not None else []


@admin.register(SandboxBounceRule)
class SandboxBounceRuleAdmin(AuditHistoryAdminMixin, BackOfficeModelAdmin):
    """The sandbox partner bounces debits from these accounts with the code given."""

    form = SandboxBounceRuleForm
    list_display = ["account_number_masked", "return_code"]
    search_fields = ["=account_number"]

    @admin.display(description="account number")
    def account_number_masked(self, obj):
        from audit.masking import mask_value

        return mask_value(obj.account_number)


# --- Presentations and results (read-only) ------------------------------------------------


@admin.register(ScheduledPresentation)
class ScheduledPresentationAdmin(ReadOnlyAdminMixin, ScopedModelAdmin):
    list_display = [
        "mandate",
        "due_date",
        "presentation_date",
        "amount",
        "attempts",
        "status",
        "last_return_code",
        "pre_debit_notified_at",
    ]
    list_select_related = ["mandate__loan"]
    list_filter = [
        "status",
        ("presentation_date", admin.DateFieldListFilter),
        ("mandate__loan__branch", ScopedRelatedFilter),
    ]
    search_fields = ["=mandate__loan__loan_number"]
    search_help_text = "Loan number (exact)."
    sortable_by = ["due_date", "presentation_date"]


@admin.register(PresentationBatch)
class PresentationBatchAdmin(ReadOnlyAdminMixin, HeadOfficeAdmin):
    """A batch holds every branch's executions for one partner and day: head office only."""

    list_display = ["reference", "partner", "run_date", "count", "total", "acknowledged_at"]
    list_select_related = ["partner"]
    list_filter = ["partner", ("run_date", admin.DateFieldListFilter)]
    search_fields = ["=reference"]
    date_hierarchy = "run_date"


@admin.register(ExecutionResult)
class ExecutionResultAdmin(ReadOnlyAdminMixin, ScopedModelAdmin):
    list_display = [
        "execution_id",
        "presentation",
        "status",
        "return_code",
        "reason",
        "received_at",
        "synced",
    ]
    list_select_related = ["presentation__mandate__loan"]
    list_filter = ["status", ("received_at", admin.DateFieldListFilter)]
    search_fields = ["=execution_id"]
    search_help_text = "Execution id (exact)."
    sortable_by = ["received_at"]

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path(
                "upload/",
                self.admin_site.admin_view(self.upload_view),
                name="{}_{}_upload".format(*info),
            ),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        return selectors.results_with_sync_state(super().get_queryset(request))

    @admin.display(boolean=True, description="Synced to DynamoDB")
    def synced(self, obj: ExecutionResult) -> bool:
        return not obj.sync_pending

    def changelist_view(self, request, extra_context=None):
        extra = {"can_upload": request.user.has_perm(UPLOAD_PERMISSION)}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def upload_view(self, request):
        """A partner's response file: every line is checked first; when one is bad, each
        bad line is reported and nothing is applied. Then each result is applied."""
        if not request.user.has_perm(UPLOAD_PERMISSION):
            raise PermissionDenied
        posted = request.method == "POST"
        form = ResponseFileForm(request.POST if posted else None, request.FILES if posted else None)
        report = None
        if posted and form.is_valid():
            partner = form.cleaned_data["partner"]
            outcomes = results_apply(
                partner_code=partner.code, results=[line.result for line in form.lines]
            )
            report = {
                "partner": partner,
                "counts": outcome_counts(outcomes),
                "errors": [
                    (line.number, outcome.execution_id, outcome.error)
                    for line, outcome in zip(form.lines, outcomes, strict=True)
                    if outcome.error
                ],
            }
            level = messages.WARNING if report["errors"] else messages.SUCCESS
            counts = report["counts"]
            self.message_user(
                request,
                f"{partner}: {counts['applied']} applied, {counts['duplicate']} duplicate, "
                f"{counts['error']} error(s).",
                level,
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload a partner's response file",
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "report": report,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/mandates/executionresult/upload.html", context)
