"""The one admin page where a maker asks for something a checker approves, with a reason:
a payment's reversal, a charge's waiver, a mandate's suspension or cancellation.

An app describes its page with a subclass of :class:`ApprovalRequestPage` (the form, the
permission, the service that makes the request, what the page shows, the messages) and
adds ``Page(model_admin).url()`` to its ModelAdmin's URLs. The flow is the same
everywhere: the object comes through the ModelAdmin (so its scoping applies: one the user
may not see is Django's "does not exist" redirect), then the permission (403), then the
form; an invalid form is shown again with its field messages and nothing is written; a
valid one calls the service, and its refusal (``ApplicationError``) or the new request's
link is a message on the object's change page.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from core.errors import ApplicationError


class ReasonForm(forms.Form):
    """A maker asks for something a checker approves: the reason is required and read by
    the checker. A subclass says what the reason is for (``reason_help``), what to say when
    it is blank (``reason_missing``) and may add fields."""

    reason_help = "Why. A checker reads it."
    reason_missing = "Give a reason."
    reason_rows = 4

    reason = forms.CharField(widget=forms.Textarea(attrs={"cols": 60}), max_length=1000)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        reason = self.fields["reason"]
        reason.help_text = self.reason_help
        reason.widget.attrs["rows"] = self.reason_rows
        # A blank reason (spaces too: the field strips them) says what the page asks for.
        reason.error_messages = {**reason.error_messages, "required": self.reason_missing}

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(self.reason_missing)
        return reason


class ApprovalRequestPage:
    """One "request an approval with a reason" page of a ModelAdmin, at
    ``<object_id>/<url_path>/``, named ``<app>_<model>_<url_name>``."""

    url_path: str
    url_name: str
    form_class: type[ReasonForm] = ReasonForm
    permission: str  # the maker's; a subclass may make it a property
    # The form is on the object's change page (``post_only``): a GET of the page is 405,
    # and the page is seen only to show an invalid form again.
    post_only = False
    template_name = "admin/approval_request.html"
    form_id = "reason-form"
    submit_label = "Request"
    # format_html() strings: ``what``, and ``url`` and ``pk`` of the request it made
    requested_message = '{what} requested; it waits for a checker (<a href="{url}">#{pk}</a>).'
    # a plain string: ``what`` and the service's refusal, ``error``
    refused_message = "{what} not requested: {error}"

    def __init__(self, model_admin) -> None:
        self.model_admin = model_admin

    # --- What an app says about its page

    def request_approval(self, request, obj, form: forms.Form) -> Any:
        """Make the request through the app's service (which raises its refusals) and
        return it (an object with ``pk`` and ``get_absolute_url()``)."""
        raise NotImplementedError

    def what(self, form: forms.Form) -> str:
        """What is requested, for the messages ("Reversal", "suspension")."""
        raise NotImplementedError

    def title(self, obj) -> str:
        raise NotImplementedError

    def crumb(self, obj) -> str:
        """The page's last breadcrumb (the title unless said otherwise)."""
        return self.title(obj)

    def object_label(self, obj) -> str:
        """The object's breadcrumb, linking to its change page."""
        return str(obj)

    def context(self, request, obj, form: forms.Form) -> dict[str, Any]:
        """What the page shows above the form: ``intro`` (text or safe HTML), then either
        ``detail_template`` (included in a module) or ``rows`` (label, value) in a table."""
        return {}

    def confirm_message(self, obj) -> str:
        """What the confirmation before sending the request says will happen."""
        return f"{self.title(obj)}: send the request to a checker? Once approved, it is done."

    def has_permission(self, request, obj) -> bool:
        return request.user.has_perm(self.permission)

    def get_form(self, request, obj) -> forms.Form:
        """The page's form, bound on a POST (a subclass may give it the object)."""
        return self.form_class(request.POST if request.method == "POST" else None)

    # --- The one flow

    def url(self) -> URLPattern:
        opts = self.model_admin.opts
        view = require_POST(self.view) if self.post_only else self.view
        return path(
            f"<path:object_id>/{self.url_path}/",
            self.model_admin.admin_site.admin_view(view),
            name=f"{opts.app_label}_{opts.model_name}_{self.url_name}",
        )

    def view(self, request, object_id):
        model_admin, opts = self.model_admin, self.model_admin.opts
        obj = model_admin.get_object(request, unquote(object_id))
        if obj is None:
            return model_admin._get_obj_does_not_exist_redirect(request, opts, object_id)
        if not self.has_permission(request, obj):
            raise PermissionDenied
        change_url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        form = self.get_form(request, obj)
        if form.is_bound and form.is_valid():
            self._request(request, obj, form)
            return HttpResponseRedirect(change_url)
        context = {
            **model_admin.admin_site.each_context(request),
            "title": self.title(obj),
            "subtitle": None,
            "crumb": self.crumb(obj),
            "object_label": self.object_label(obj),
            "opts": opts,
            "original": obj,
            "form": form,
            "form_id": self.form_id,
            "submit_label": self.submit_label,
            "confirm_message": self.confirm_message(obj),
            "change_url": change_url,
            **self.context(request, obj, form),
        }
        request.current_app = model_admin.admin_site.name
        return TemplateResponse(request, self.template_name, context)

    def _request(self, request, obj, form: forms.Form) -> None:
        what = self.what(form)
        try:
            made = self.request_approval(request, obj, form)
        except ApplicationError as exc:
            refused = self.refused_message.format(what=what, error=exc)
            self.model_admin.message_user(request, refused, messages.ERROR)
            return
        requested = format_html(
            self.requested_message, what=what, url=made.get_absolute_url(), pk=made.pk
        )
        self.model_admin.message_user(request, requested, messages.SUCCESS)
