"""Customers with their bank account (PAN, mobile and IFSC checked)."""

from __future__ import annotations

from django import forms

from accounts.models import MOBILE_VALIDATOR, mobile_digits
from loans.models import (
    ACCOUNT_NUMBER_VALIDATOR,
    IFSC_VALIDATOR,
    PAN_VALIDATOR,
    Customer,
    CustomerBankAccount,
)
from loans.services import (
    GUARDED_FIELDS,
    customer_bank_account_add,
    customer_create,
    customer_update,
)

from ..exceptions import RowRefused
from .base import (
    CREATED,
    UNCHANGED,
    UPDATED,
    ChoiceCell,
    CodeCell,
    DateCell,
    Importer,
)

# --- Customers --------------------------------------------------------------------------


class CustomerRow(forms.Form):
    customer_number = CodeCell(max_length=20, help_text="The customer's number (kept as is).")
    branch_code = CodeCell(max_length=12, help_text="The branch that serves the customer.")
    name = forms.CharField(max_length=120, help_text="Full name as on the PAN.")
    mobile = forms.CharField(help_text="10-digit mobile (spaces, +91 or a leading 0 removed).")
    pan = CodeCell(max_length=10, validators=[PAN_VALIDATOR], help_text="PAN: ABCDE1234F.")
    email = forms.EmailField(required=False, help_text="Email.")
    date_of_birth = DateCell(required=False, help_text="YYYY-MM-DD or DD-MM-YYYY.")
    address = forms.CharField(required=False, help_text="Postal address.")
    bank_holder_name = forms.CharField(
        max_length=120, required=False, help_text="Bank account holder (blank: no account)."
    )
    bank_name = forms.CharField(max_length=100, required=False, help_text="The bank's name.")
    bank_account_number = forms.CharField(
        required=False, validators=[ACCOUNT_NUMBER_VALIDATOR], help_text="9 to 18 digits."
    )
    bank_ifsc = CodeCell(
        max_length=11, required=False, validators=[IFSC_VALIDATOR], help_text="IFSC: SBIN0001234."
    )
    bank_account_type = ChoiceCell(
        choices=CustomerBankAccount.AccountType.choices,
        default=CustomerBankAccount.AccountType.SAVINGS,
        help_text="SAVINGS (default) or CURRENT.",
    )

    def clean_mobile(self):
        mobile = mobile_digits(self.cleaned_data["mobile"])
        MOBILE_VALIDATOR(mobile)
        return mobile

    def clean(self):
        data = super().clean()
        bank = ["bank_holder_name", "bank_name", "bank_account_number", "bank_ifsc"]
        given = [name for name in bank if data.get(name)]
        if given and len(given) < len(bank) and not self.errors:
            missing = next(name for name in bank if not data.get(name))
            self.add_error(missing, "Give all four bank columns, or none.")
        return data


class CustomerImporter(Importer):
    kind = "customers"
    title = "Customers and bank accounts"
    form_class = CustomerRow
    key_column = "customer_number"
    examples = {
        "customer_number": "LEG000123",
        "branch_code": "PUN01",
        "name": "Ravi Kumar",
        "mobile": "9876543210",
        "pan": "ABCDE1234F",
        "email": "ravi@example.com",
        "date_of_birth": "1985-04-12",
        "address": "12 MG Road, Pune 411001",
        "bank_holder_name": "Ravi Kumar",
        "bank_name": "State Bank of India",
        "bank_account_number": "123456789012",
        "bank_ifsc": "SBIN0001234",
        "bank_account_type": "SAVINGS",
    }

    def write(self, data) -> str:
        branch = self.branch(data["branch_code"])
        values = {
            "name": data["name"],
            "mobile": data["mobile"],
            "pan": data["pan"],
            "email": data["email"],
            "date_of_birth": data["date_of_birth"],
            "address": data["address"],
        }
        bank = {
            "holder_name": data["bank_holder_name"],
            "bank_name": data["bank_name"],
            "account_number": data["bank_account_number"],
            "ifsc": data["bank_ifsc"],
            "account_type": data["bank_account_type"],
        }
        number = data["customer_number"]
        customer = Customer.objects.select_for_update().filter(customer_number=number).first()
        if customer is None:
            customer = customer_create(
                actor=self.actor, customer_number=number, branch=branch, **values
            )
            if bank["account_number"]:
                customer_bank_account_add(
                    customer=customer, actor=self.actor, is_primary=True, **bank
                )
            return CREATED
        self.check_scope(customer.branch_id, "customer_number")
        if customer.branch_id != branch.pk:
            raise RowRefused("branch_code", f"{number} is a customer of another branch.")
        changes = {name: value for name, value in values.items() if _differs(customer, name, value)}
        guarded = [name for name in changes if name in GUARDED_FIELDS]
        if guarded:
            raise RowRefused(
                guarded[0],
                f"The {GUARDED_FIELDS[guarded[0]]} differs from the system's: it changes only "
                "through a change request that a checker approves.",
            )
        bank_status = self._bank(customer, bank)
        if changes:
            customer_update(customer_id=customer.pk, actor=self.actor, **changes)
            return UPDATED
        return bank_status

    def _bank(self, customer: Customer, bank: dict) -> str:
        if not bank["account_number"]:
            return UNCHANGED
        accounts = list(customer.bank_accounts.all())
        if any(
            a.account_number == bank["account_number"] and a.ifsc == bank["ifsc"] for a in accounts
        ):
            return UNCHANGED
        if accounts:
            raise RowRefused(
                "bank_account_number",
                "The customer has another bank account: a change goes through a change request.",
            )
        customer_bank_account_add(customer=customer, actor=self.actor, is_primary=True, **bank)
        return UPDATED


def _differs(instance, name: str, value) -> bool:
    return getattr(instance, name) != value
