"""Forms of the mandate screens: the admin's mandate form, the suspend/cancel request and
the partner's response file."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from core.admin.approval_request import ReasonForm
from core.errors import ApplicationError
from core.forms import AsciiModelChoiceField
from loans.models import BankingPartner

from .exceptions import ResponseFileRejected
from .models import Mandate, ReturnCodePolicy, SandboxBounceRule
from .services import MAX_FILE_BYTES, ResultLine, mandate_update, response_file_read

MANDATE_FIELDS = list(Mandate.DETAIL_FIELDS)


class MandateForm(forms.ModelForm):
    """Details of a new or draft mandate. The payer must be on the loan (``Mandate.clean``).

    A draft's change is made once the form is valid, by ``mandate_update`` (it locks the
    row, checks it still is a draft, saves what changed and records the editor); its
    refusal shows on the form. The admin sets ``actor``."""

    actor = None

    class Meta:
        model = Mandate
        fields = MANDATE_FIELDS

    def _post_clean(self):
        super()._post_clean()  # the model's own checks first
        if self.instance.pk and not self.errors:
            changed = [name for name in self.changed_data if name in MANDATE_FIELDS]
            try:
                mandate_update(
                    mandate_id=self.instance.pk,
                    actor=self.actor,
                    **{name: self.cleaned_data[name] for name in changed},
                )
            except ApplicationError as exc:
                field = exc.field if exc.field in self.fields else None
                self.add_error(field, ValidationError(exc.message, code=exc.code))
            except ValidationError as exc:  # the model's checks on the locked row
                self._update_errors(exc)


class StopRequestForm(ReasonForm):
    ACTIONS = [("SUSPEND", "Suspend"), ("CANCEL", "Cancel")]
    reason_help = "Why the debits must stop. Operations reads it before approving."
    reason_rows = 3
    field_order = ["action", "reason"]

    action = forms.ChoiceField(choices=ACTIONS, widget=forms.RadioSelect)


class SandboxBounceRuleForm(forms.ModelForm):
    class Meta:
        model = SandboxBounceRule
        fields = ["account_number", "return_code"]

    def clean_return_code(self) -> str:
        code = self.cleaned_data["return_code"].strip()
        if not ReturnCodePolicy.objects.filter(code=code).exists():
            raise ValidationError("Unknown NACH return code: add it to the return-code policies.")
        return code


# --- A partner's response file ----------------------------------------------------------


class ResponseFileForm(forms.Form):
    """A CSV of ``execution_id,status,return_code,reason`` (a header line is optional).

    Valid only when every line is (``mandates.services.response_file_read`` checks them):
    each bad line is reported with its number (``line_errors``), and then nothing is applied.
    """

    partner = AsciiModelChoiceField(
        queryset=BankingPartner.objects.order_by("name"),
        help_text="The banking partner that sent the file.",
    )
    file = forms.FileField(help_text="CSV: execution_id,status,return_code,reason")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lines: list[ResultLine] = []
        self.line_errors: list[tuple[int, str]] = []

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        content = cleaned["file"].read(MAX_FILE_BYTES + 1)  # one byte more: too large
        try:
            self.lines = response_file_read(content=content, partner=cleaned["partner"])
        except ApplicationError as exc:  # the file's refusal, or the executions store down
            self.line_errors = exc.lines if isinstance(exc, ResponseFileRejected) else []
            self.add_error("file", ValidationError(exc.message, code=exc.code))
        return cleaned
