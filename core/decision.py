"""The one decision screen: a subject's page (its drill-down, then the approve/return form of
``workflow/_decision.html``) and the POST that decides it.

A screen says how to find the subject in the user's scope, what its page shows, who may
decide it and how to carry the decision out; the flow is the same everywhere: an invalid
form is shown again, a refusal of the service is a message on the subject's page, a
decision is a message on the approvals inbox."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from core.errors import ApplicationError

from .forms import DecisionForm


class DecisionScreen:
    template_name: str
    done_url_name = "approvals:inbox"  # where a decision leads: the list of what waits

    def get_object(self, request, pk: int) -> Any:
        """The subject, if in the user's scope (else 404) and they may look at it (else 403)."""
        raise NotImplementedError

    def detail_url(self, obj) -> str:
        raise NotImplementedError

    def page(self, request, obj) -> dict[str, Any]:
        """The page's context: title, the drill-down and, for the form, ``decide_url``,
        ``may_decide``, ``pending``, ``is_maker``, ``refusal``."""
        raise NotImplementedError

    def decide(self, request, obj, *, approve: bool, remarks: str) -> Any:
        """Carry the decision out through the service (which raises its refusals)."""
        raise NotImplementedError

    def decided_message(self, obj, decided, *, approve: bool) -> str:
        raise NotImplementedError

    def render(self, request, obj, form: DecisionForm) -> TemplateResponse:
        context = {**admin.site.each_context(request), "subtitle": None}
        context.update(self.page(request, obj), form=form)
        return TemplateResponse(request, self.template_name, context)

    def detail(self, request, pk: int) -> TemplateResponse:
        return self.render(request, self.get_object(request, pk), DecisionForm())

    def post(self, request, pk: int):
        obj = self.get_object(request, pk)
        form = DecisionForm(request.POST)
        if not form.is_valid():
            return self.render(request, obj, form)
        try:
            decided = self.decide(
                request, obj, approve=form.approve, remarks=form.cleaned_data["remarks"]
            )
        except ApplicationError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(self.detail_url(obj))
        messages.success(request, self.decided_message(obj, decided, approve=form.approve))
        return HttpResponseRedirect(reverse(self.done_url_name))
