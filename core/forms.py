"""The kernel's forms: fields that take ASCII digits only, and a checker's decision (the
maker's request with a reason is ``core.admin.approval_request.ReasonForm``).

Python reads any Unicode digit as a digit: ``int()``, ``Decimal()`` and ``strptime`` read
1500 written in Arabic-Indic or full-width digits as 1500, and so do Django's
``IntegerField``, ``DecimalField``, ``DateField`` and the id of a ``ModelChoiceField``.
The back-office promises ASCII digits wherever money or an id is typed, so these fields
refuse any other character with a field message before Django parses the value. Every
admin form gets them for its model's number, date and foreign-key fields
(``core.admin.base.BackOfficeModelAdmin``); a form that declares such a field itself
uses them directly.
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

NON_ASCII_MESSAGE = "Use the digits 0-9 (no other scripts' digits or full-width characters)."


def refuse_non_ascii(value) -> None:
    """A validator for raw input: text with a character outside ASCII is refused."""
    if isinstance(value, str) and not value.isascii():
        raise ValidationError(NON_ASCII_MESSAGE, code="non_ascii")


class AsciiInputMixin:
    def to_python(self, value):
        refuse_non_ascii(value)
        return super().to_python(value)


class AsciiDecimalField(AsciiInputMixin, forms.DecimalField):
    pass


class AsciiIntegerField(AsciiInputMixin, forms.IntegerField):
    pass


class AsciiDateField(AsciiInputMixin, forms.DateField):
    pass


class AsciiDateTimeField(AsciiInputMixin, forms.DateTimeField):
    pass


class AsciiModelChoiceField(AsciiInputMixin, forms.ModelChoiceField):
    pass


class DecisionForm(forms.Form):
    """Approve or return a request. Returning needs remarks (the service checks it too)."""

    APPROVE = "approve"
    RETURN = "return"

    decision = forms.ChoiceField(choices=[(APPROVE, "Approve"), (RETURN, "Return")])
    remarks = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required to return the request; the maker sees them.",
    )

    @property
    def approve(self) -> bool:
        return self.cleaned_data["decision"] == self.APPROVE

    def clean(self):
        cleaned = super().clean()
        cleaned["remarks"] = (cleaned.get("remarks") or "").strip()
        if cleaned.get("decision") == self.RETURN and not cleaned["remarks"]:
            self.add_error("remarks", "Say why you return it.")
        return cleaned
