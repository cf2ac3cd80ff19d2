from django.apps import AppConfig


class LoansConfig(AppConfig):
    name = "loans"
    verbose_name = "Loans"

    def ready(self) -> None:
        from approvals.services import register_kind
        from audit.tracking import track
        from refdata import cache as refdata

        from .refdata import PRODUCTS
        from .services import APPROVAL_KINDS, DERIVED_FIELDS

        for kind, handler in APPROVAL_KINDS.items():
            register_kind(kind, handler)
        refdata.register(PRODUCTS, "loans.LoanProduct")

        track("loans.LoanProduct")
        track("loans.BankingPartner")
        track("loans.CollectionAccount", masked=("account_number",))
        track(
            "loans.Customer",
            masked={"pan": 4, "mobile": 4, "email": 0, "date_of_birth": 0, "address": 0},
        )
        track("loans.CustomerBankAccount", masked=("account_number",))
        # The dues and the last payment are derived (from the instalments, nightly and by
        # each posting, whose own records say why): recording them would repeat those.
        track("loans.LoanAccount", exclude=("updated_at", *DERIVED_FIELDS))
        track("loans.CoBorrower")
        track("loans.LoanCharge")
        # Instalments are the generated schedule: the loan's own event and the ledger's
        # postings record why they change; tracking each row would repeat them.
