"""The collect form: amount, mode and its details, remarks, and the idempotency key bound to
the form (made when the form is first shown, carried signed in a hidden field, so a second
submission of the same form is the same payment). Its checks are the service's
(``collect_problems``), shown as field messages."""

from __future__ import annotations

import secrets
from decimal import Decimal

from django import forms
from django.core import signing

from core.forms import AsciiDateField, AsciiDecimalField

from .models import DeskReceipt
from .services import CollectInput, collect_problems

FORM_SALT = "desk.collect.form"
TOKEN_MAX_AGE = 24 * 3600  # a form left open overnight is started again


def form_token(*, user, loan_number: str) -> str:
    """A new form's identity: its idempotency key, bound to the user and the loan."""
    return signing.dumps(
        {"k": secrets.token_hex(16), "u": user.pk, "l": loan_number}, salt=FORM_SALT
    )


class CollectForm(forms.Form):
    token = forms.CharField(widget=forms.HiddenInput)
    amount = AsciiDecimalField(
        label="Amount (₹)",
        max_digits=14,
        decimal_places=2,
        min_value=Decimal("0.01"),
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
    mode = forms.ChoiceField(
        choices=DeskReceipt.Mode.choices,
        initial=DeskReceipt.Mode.CASH,
        widget=forms.RadioSelect,
    )
    cheque_number = forms.CharField(label="Cheque number", max_length=6, required=False)
    cheque_bank = forms.CharField(label="Drawn on (bank)", max_length=100, required=False)
    cheque_date = AsciiDateField(
        label="Cheque date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    upi_reference = forms.CharField(label="UPI reference (RRN)", max_length=35, required=False)
    neft_utr = forms.CharField(label="NEFT UTR", max_length=22, required=False)
    remarks = forms.CharField(
        max_length=200, required=False, widget=forms.TextInput(attrs={"size": 60})
    )
    confirm_duplicate = forms.BooleanField(
        label="This is another payment, not the same one again", required=False
    )

    def __init__(self, *args, loan, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.loan = loan
        self.user = user

    def clean_token(self) -> str:
        try:
            data = signing.loads(self.cleaned_data["token"], salt=FORM_SALT, max_age=TOKEN_MAX_AGE)
        except signing.SignatureExpired:
            raise forms.ValidationError("This form is too old: open it again.") from None
        except signing.BadSignature:
            raise forms.ValidationError("This form is not valid: open it again.") from None
        if data.get("u") != self.user.pk or data.get("l") != self.loan.loan_number:
            raise forms.ValidationError("This form belongs to another loan or user.")
        return self.cleaned_data["token"]

    @property
    def idempotency_key(self) -> str:
        """The key of the payment this form records: ``desk-<random>`` from the token."""
        return "desk-" + signing.loads(self.cleaned_data["token"], salt=FORM_SALT)["k"]

    def collect_input(self) -> CollectInput:
        data = self.cleaned_data
        return CollectInput(
            loan_number=self.loan.loan_number,
            amount=data["amount"],
            mode=data["mode"],
            cheque_number=data.get("cheque_number") or "",
            cheque_bank=data.get("cheque_bank") or "",
            cheque_date=data.get("cheque_date"),
            upi_reference=data.get("upi_reference") or "",
            neft_utr=data.get("neft_utr") or "",
            remarks=data.get("remarks") or "",
        ).normalised()

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        problems = collect_problems(collect=self.collect_input(), branch=self.loan.branch)
        for field, message in problems.items():
            self.add_error(field, message)
        return data
