"""The book: customers with their bank account, loans with their terms, co-borrowers and
schedule (generated from the terms by ``loans``' schedule), and active mandates."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from accounts.models import MOBILE_VALIDATOR, User, mobile_digits
from loans.models import (
    ACCOUNT_NUMBER_VALIDATOR,
    IFSC_VALIDATOR,
    PAN_VALIDATOR,
    BankingPartner,
    CoBorrower,
    Customer,
    CustomerBankAccount,
    LoanAccount,
    LoanProduct,
    collection_officer_problem,
)
from loans.services import (
    GUARDED_FIELDS,
    customer_bank_account_add,
    customer_create,
    customer_update,
    loan_account_create,
    loan_co_borrower_add,
)
from mandates.exceptions import MandateError
from mandates.models import Mandate
from mandates.services import mandate_import

from ..exceptions import RowRefused
from .base import (
    CREATED,
    UNCHANGED,
    UPDATED,
    ChoiceCell,
    CodeCell,
    DateCell,
    Importer,
    MoneyCell,
    changed_fields,
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


# --- Loans ------------------------------------------------------------------------------


def _co_borrowers(text: str) -> list[tuple[str, str, str]]:
    """``C1:SPOUSE;C2:PARENT:GUARANTOR`` -> [(number, relationship, role)]."""
    parsed = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        pieces = [p.strip().upper() for p in part.split(":")]
        if len(pieces) not in (2, 3):
            raise forms.ValidationError(
                f"“{part}”: write customer_number:relationship[:role], separated by ';'."
            )
        number, relationship = pieces[0], pieces[1]
        role = pieces[2] if len(pieces) == 3 else CoBorrower.Role.CO_BORROWER
        if relationship not in CoBorrower.Relationship.values:
            raise forms.ValidationError(
                f"“{relationship}” is not a relationship: "
                f"{', '.join(CoBorrower.Relationship.values)}."
            )
        if role not in CoBorrower.Role.values:
            raise forms.ValidationError(
                f"“{role}” is not a role: {', '.join(CoBorrower.Role.values)}."
            )
        parsed.append((number, relationship, role))
    return parsed


class LoanRow(forms.Form):
    loan_number = CodeCell(max_length=20, help_text="The loan's number (kept as is).")
    customer_number = CodeCell(max_length=20, help_text="The borrower (imported before).")
    branch_code = CodeCell(max_length=12, help_text="The loan's branch (the borrower's).")
    product_code = CodeCell(max_length=20, help_text="A loan product of this system.")
    sanctioned_amount = MoneyCell(min_value=Decimal("1000.00"), help_text="Rupees.")
    disbursed_amount = MoneyCell(min_value=Decimal("1000.00"), help_text="Rupees (≤ sanctioned).")
    interest_rate = forms.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=0,
        max_value=60,
        required=False,
        help_text="% a year; blank: the product's.",
    )
    tenure_months = forms.IntegerField(min_value=1, max_value=360, help_text="Months.")
    due_day = forms.IntegerField(min_value=1, max_value=28, help_text="Day of the month, 1 to 28.")
    disbursed_on = DateCell(help_text="YYYY-MM-DD or DD-MM-YYYY.")
    co_borrowers = forms.CharField(
        required=False,
        help_text="customer_number:relationship[:role] separated by ';' (relationship SPOUSE, "
        "PARENT, CHILD, SIBLING, BUSINESS_PARTNER, OTHER; role CO_BORROWER or GUARANTOR).",
    )
    collection_officer = forms.CharField(
        required=False, help_text="Username of the branch's collection officer."
    )

    def clean_co_borrowers(self):
        return _co_borrowers(self.cleaned_data["co_borrowers"])


TERMS = (
    "sanctioned_amount",
    "disbursed_amount",
    "interest_rate",
    "tenure_months",
    "due_day",
    "disbursed_on",
)


COLUMN_OF = {
    "customer": "customer_number",
    "branch": "branch_code",
    "product": "product_code",
    "loan": "loan_number",
    "payer": "payer_customer_number",
}


class LoanImporter(Importer):
    kind = "loans"
    title = "Loans with co-borrowers and schedule"
    form_class = LoanRow
    key_column = "loan_number"
    examples = {
        "loan_number": "LEGL00042",
        "customer_number": "LEG000123",
        "branch_code": "PUN01",
        "product_code": "PL12",
        "sanctioned_amount": "150000.00",
        "disbursed_amount": "150000.00",
        "interest_rate": "18.50",
        "tenure_months": "24",
        "due_day": "5",
        "disbursed_on": "2025-06-20",
        "co_borrowers": "LEG000124:SPOUSE;LEG000200:PARENT:GUARANTOR",
        "collection_officer": "asha.patil",
    }

    def __init__(self, *, actor) -> None:
        super().__init__(actor=actor)
        self._products: dict[str, LoanProduct | None] = {}

    def write(self, data) -> str:
        branch = self.branch(data["branch_code"])
        product = self._product(data["product_code"])
        terms = {name: data[name] for name in TERMS}
        if terms["interest_rate"] is None:
            terms["interest_rate"] = product.interest_rate
        number = data["loan_number"]
        loan = LoanAccount.objects.filter(loan_number=number).first()
        if loan is not None:
            return self._existing(loan, branch, product, terms, data)
        customer = self._customer(data["customer_number"], "customer_number", branch)
        loan = loan_account_create(
            customer=customer,
            product=product,
            branch=branch,
            loan_number=number,
            actor=self.actor,
            **terms,
        )
        for customer_number, relationship, role in data["co_borrowers"]:
            loan_co_borrower_add(
                loan=loan,
                customer=self._customer(customer_number, "co_borrowers", branch),
                relationship=relationship,
                role=role,
                actor=self.actor,
            )
        if data["collection_officer"]:
            officer = User.objects.filter(username=data["collection_officer"]).first()
            if officer is None:
                raise RowRefused("collection_officer", "No user has this username.")
            if problem := collection_officer_problem(officer, branch.pk):
                raise RowRefused("collection_officer", problem)
            LoanAccount.objects.filter(pk=loan.pk).update(collection_officer=officer)
        return CREATED

    def _existing(self, loan, branch, product, terms, data) -> str:
        """A loan's terms are fixed once disbursed: the same row again is unchanged, a
        different one refused (never a second schedule)."""
        self.check_scope(loan.branch_id, "loan_number")
        wanted = {
            "customer_id": self._customer(data["customer_number"], "customer_number", branch).pk,
            "branch_id": branch.pk,
            "product_id": product.pk,
            **terms,
        }
        differing = [name for name, value in wanted.items() if getattr(loan, name) != value]
        if differing:
            name = differing[0].removesuffix("_id")
            raise RowRefused(
                {
                    "customer": "customer_number",
                    "branch": "branch_code",
                    "product": "product_code",
                }.get(name, name),
                f"Loan {loan.loan_number} exists with another {name.replace('_', ' ')}: "
                "a loan's terms do not change once disbursed.",
            )
        return UNCHANGED

    def _customer(self, number: str, field: str, branch) -> Customer:
        customer = Customer.objects.filter(customer_number=number).first()
        if customer is None:
            raise RowRefused(field, f"No customer has the number {number}: import it first.")
        self.check_scope(customer.branch_id, field)
        return customer

    def _product(self, code: str) -> LoanProduct:
        if code not in self._products:
            self._products[code] = LoanProduct.objects.filter(code=code).first()
        product = self._products[code]
        if product is None:
            raise RowRefused("product_code", f"No loan product has the code {code}.")
        return product


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
        "payer_customer_number": "",
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
