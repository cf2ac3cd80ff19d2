"""API clients in the admin: created and rotated through the services, the raw key shown
once in a message and nowhere else (not in the form, the change log or the audit trail);
the key hash is never shown."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.utils.html import format_html

from audit.admin import AuditHistoryAdminMixin
from core.admin.base import BackOfficeModelAdmin

from .models import ApiClient
from .scopes import SCOPE_CHOICES
from .services import (
    api_client_branch_problems,
    api_client_create,
    api_client_deactivate,
    api_client_rotate_key,
    api_client_update,
)

NEW_KEY_ATTR = "_api_client_new_key"


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=SCOPE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = ApiClient
        fields = [
            "name",
            "kind",
            "banking_partner",
            "scopes",
            "all_branches",
            "allowed_branches",
            "is_active",
        ]

    def clean(self):
        cleaned = super().clean()
        problems = api_client_branch_problems(
            all_branches=bool(cleaned.get("all_branches")),
            allowed_branches=cleaned.get("allowed_branches"),
        )
        for field, message in problems.items():
            self.add_error(field, message)
        if (
            cleaned.get("kind") == ApiClient.Kind.INTEGRATION
            and not cleaned.get("all_branches")
            and not cleaned.get("allowed_branches")
        ):
            # it would be saved, and every request of its key would find nothing
            self.add_error("allowed_branches", "Choose the branches it may see, or all branches.")
        return cleaned


@admin.register(ApiClient)
class ApiClientAdmin(AuditHistoryAdminMixin, BackOfficeModelAdmin):
    form = ApiClientForm
    list_display = ["name", "kind", "key_prefix", "scope_list", "is_active", "last_used_at"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "=key_prefix"]
    autocomplete_fields = ["allowed_branches", "banking_partner"]
    readonly_fields = ["key_prefix", "created_at", "created_by", "last_used_at"]
    actions = ["rotate_key", "deactivate"]
    add_fieldsets = (
        (None, {"fields": ("name", "kind", "banking_partner")}),
        ("Access", {"fields": ("scopes", "all_branches", "allowed_branches")}),
    )
    fieldsets = (
        (None, {"fields": ("name", "kind", "banking_partner", "is_active")}),
        ("Access", {"fields": ("scopes", "all_branches", "allowed_branches")}),
        (
            "Key",
            {
                "fields": ("key_prefix", "created_at", "created_by", "last_used_at"),
                "description": "The key itself is shown only once, when created or rotated "
                "(action 'Rotate the key').",
            },
        ),
    )

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else super().get_fieldsets(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["fields"] = [f for fs in self.add_fieldsets for f in fs[1]["fields"]]
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiClient) -> str:
        return ", ".join(obj.scopes or ())

    def save_model(self, request, obj, form, change):
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            branches = changes.pop("allowed_branches", None)
            api_client_update(
                client_id=obj.pk, actor=request.user, allowed_branches=branches, **changes
            )
            return
        client, raw_key = api_client_create(
            name=obj.name,
            kind=obj.kind,
            scopes=obj.scopes,
            all_branches=obj.all_branches,
            allowed_branches=form.cleaned_data.get("allowed_branches") or (),
            banking_partner=obj.banking_partner,
            actor=request.user,
        )
        # The form's instance becomes the created row, for the admin's log and redirect.
        obj.pk = client.pk
        obj.refresh_from_db()
        obj._state.adding = False
        setattr(request, NEW_KEY_ATTR, raw_key)

    def save_related(self, request, form, formsets, change):
        pass  # the services have set the branches (the form's only many-to-many field)

    def response_add(self, request, obj, post_url_continue=None):
        raw_key = getattr(request, NEW_KEY_ATTR, None)
        if raw_key:
            delattr(request, NEW_KEY_ATTR)
            self._show_key(request, obj, raw_key)
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description="Rotate the key of the selected clients", permissions=["change"])
    def rotate_key(self, request, queryset):
        for client in queryset:
            with transaction.atomic():
                raw_key = api_client_rotate_key(client_id=client.pk, actor=request.user)
                self.log_change(request, client, "Rotated the API key.")
            self._show_key(request, client, raw_key, rotated=True)

    @admin.action(description="Deactivate the selected clients", permissions=["change"])
    def deactivate(self, request, queryset):
        for client in queryset.filter(is_active=True):
            with transaction.atomic():
                api_client_deactivate(client_id=client.pk, actor=request.user)
                self.log_change(request, client, "Deactivated.")
            self.message_user(request, f"{client}: deactivated; its key no longer works.")

    def _show_key(self, request, client: ApiClient, raw_key: str, rotated: bool = False) -> None:
        what = "new API key" if rotated else "API key"
        self.message_user(
            request,
            format_html(
                "The {} of {} is <code>{}</code>. Copy it now: it is not shown again.",
                what,
                client.name,
                raw_key,
            ),
            messages.SUCCESS,
        )
