"""Active (or suspended) mandates with their UMRN, as registered in the other system."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from loans.models import (
    ACCOUNT_NUMBER_VALIDATOR,
    IFSC_VALIDATOR,
    BankingPartner,
    Customer,
    LoanAccount,
)
from mandates.exceptions import MandateError
from mandates.models import Mandate
from mandates.services import mandate_import

from ..exceptions import RowRefused
from .base import (
    CREATED,
    UNCHANGED,
    ChoiceCell,
    CodeCell,
    DateCell,
    Importer,
    MoneyCell,
    changed_fields,
)
from .loans import COLUMN_OF

# --- Mandates ---------------------------------------------------------------------------


class MandateRow(forms.Form):
    umrn = CodeCell(max_length=20, help_text="The Unique Mandate Reference Number (NPCI).")
    loan_number = CodeCell(max_length=20, help_text="The loan it pays (imported before).")
    payer_customer_number = CodeCell(
        max_length=20, required=False, help_text="The payer: the borrower (blank) or a co-borrower."
    )
    banking_partner_code = forms.SlugField(help_text="The sponsor bank (a banking partner's code).")
    bank_name = forms.CharField(max_length=100, help_text="The payer's bank.")
    account_number = forms.CharField(
        validators=[ACCOUNT_NUMBER_VALIDATOR], help_text="The payer's account, 9 to 18 digits."
    )
    ifsc = CodeCell(max_length=11, validators=[IFSC_VALIDATOR], help_text="IFSC: SBIN0001234.")
    account_type = ChoiceCell(
        choices=Mandate.AccountType.choices,
        default=Mandate.AccountType.SAVINGS,
        help_text="SAVINGS (default) or CURRENT.",
    )
    max_amount = MoneyCell(min_value=Decimal("1.00"), help_text="The most a debit may take.")
    frequency = ChoiceCell(
        choices=Mandate.Frequency.choices,
        default=Mandate.Frequency.MONTHLY,
        help_text="MONTHLY (default) or AS_PRESENTED.",
    )
    mandate_type = ChoiceCell(
        choices=Mandate.MandateType.choices,
        default=Mandate.MandateType.E_NACH,
        help_text="E_NACH (default), PHYSICAL_NACH or UPI_AUTOPAY.",
    )
    start_date = DateCell(help_text="YYYY-MM-DD or DD-MM-YYYY.")
    end_date = DateCell(help_text="After the start date.")
    status = ChoiceCell(
        choices=[(s, s) for s in ("ACTIVE", "SUSPENDED")], help_text="ACTIVE or SUSPENDED."
    )


MANDATE_FIELDS = (
    "bank_name",
    "account_number",
    "ifsc",
    "account_type",
    "max_amount",
    "frequency",
    "mandate_type",
    "start_date",
    "end_date",
    "status",
)


class MandateImporter(Importer):
    kind = "mandates"
    title = "Active mandates"
    form_class = MandateRow
    key_column = "umrn"
    needs_actor = True  # a mandate records who created it
    examples = {
        "umrn": "HDFC7000000012345678",
        "loan_number": "LEGL00042",
        "payer_customer_number": "LEG000124",
        "banking_partner_code": "hdfc",
        "bank_name": "State Bank of India",
        "account_number": "123456789012",
        "ifsc": "SBIN0001234",
        "account_type": "SAVINGS",
        "max_amount": "10000.00",
        "frequency": "MONTHLY",
        "mandate_type": "E_NACH",
        "start_date": "2025-07-01",
        "end_date": "2027-07-01",
        "status": "ACTIVE",
    }

    def write(self, data) -> str:
        loan = LoanAccount.objects.filter(loan_number=data["loan_number"]).first()
        if loan is None:
            raise RowRefused("loan_number", f"No loan has the number {data['loan_number']}.")
        self.check_scope(loan.branch_id, "loan_number")
        payer = loan.customer
        if data["payer_customer_number"]:
            payer = Customer.objects.filter(customer_number=data["payer_customer_number"]).first()
            if payer is None:
                raise RowRefused("payer_customer_number", "No customer has this number.")
        partner = BankingPartner.objects.filter(code=data["banking_partner_code"]).first()
        if partner is None:
            raise RowRefused("banking_partner_code", "No banking partner has this code.")
        values = {name: data[name] for name in MANDATE_FIELDS}
        mandate = Mandate.objects.filter(umrn=data["umrn"]).first()
        if mandate is None:
            try:
                mandate_import(
                    loan=loan,
                    payer=payer,
                    banking_partner=partner,
                    umrn=data["umrn"],
                    actor=self.actor,
                    **values,
                )
            except MandateError as exc:
                raise RowRefused(COLUMN_OF.get(exc.field, exc.field or ""), exc.message) from None
            return CREATED
        self.check_scope(mandate.loan.branch_id, "umrn")
        values.update(loan=loan, payer=payer, banking_partner=partner)
        differing = changed_fields(mandate, values)
        if differing:
            raise RowRefused(
                differing[0],
                f"Mandate {data['umrn']} exists with another {differing[0].replace('_', ' ')}: "
                "a mandate changes through its own screens.",
            )
        return UNCHANGED
