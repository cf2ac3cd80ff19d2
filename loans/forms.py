"""The maker's form of a customer change (mobile, PAN, bank account): the new value and a
reason. It validates with the service's own check, so an invalid value is a message on its
field before anything is asked; the service checks again when it makes the request."""

from __future__ import annotations

from django import forms

from core.admin.approval_request import ReasonForm

from .exceptions import CustomerChangeInvalid
from .models import CustomerBankAccount
from .services import BANK_FIELDS, Change, customer_change_check


class CustomerChangeForm(ReasonForm):
    reason_help = (
        "Why it changes, and the document you saw (e.g. the new PAN card). A checker reads it."
    )
    reason_missing = "Give a reason for the change."

    mobile = forms.CharField(
        label="New mobile", max_length=20, help_text="10 digits; +91, spaces and dashes are fine."
    )
    pan = forms.CharField(label="New PAN", max_length=12, help_text="ABCDE1234F")
    holder_name = forms.CharField(max_length=120)
    bank_name = forms.CharField(max_length=100)
    account_number = forms.CharField(max_length=30)
    ifsc = forms.CharField(label="IFSC", max_length=11)
    account_type = forms.ChoiceField(choices=CustomerBankAccount.AccountType.choices)
    is_primary = forms.BooleanField(
        label="Make it the primary account", required=False, initial=True
    )

    FIELDS = {
        Change.MOBILE: ["mobile"],
        Change.PAN: ["pan"],
        Change.BANK_ADD: [*BANK_FIELDS, "is_primary"],
        Change.BANK_CHANGE: list(BANK_FIELDS),
        Change.BANK_REMOVE: [],
        Change.BANK_PRIMARY: [],
    }

    def __init__(self, *args, customer, change: str, account=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.customer, self.change, self.account = customer, change, account
        wanted = {*self.FIELDS[change], "reason"}
        for name in list(self.fields):
            if name not in wanted:
                del self.fields[name]
        if change == Change.BANK_CHANGE and account is not None:
            for name in BANK_FIELDS:
                self.fields[name].initial = getattr(account, name)
        self.order_fields([*self.FIELDS[change], "reason"])

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            _, self.new_values = customer_change_check(
                customer=self.customer,
                change=self.change,
                new=cleaned,
                account_id=self.account.pk if self.account else None,
            )
        except CustomerChangeInvalid as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
        return cleaned
