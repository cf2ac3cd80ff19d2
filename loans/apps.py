from django.apps import AppConfig


class LoansConfig(AppConfig):
    name = "loans"
    verbose_name = "Loans"

    def ready(self) -> None:
        from approvals.selectors import register_request_detail
        from approvals.services import register_kind
        from audit.tracking import track
        from refdata import cache as refdata

        from .panels import (
            customer_loans_panel,
            customer_notifications_panel,
            register_customer_panel,
        )
        from .refdata import PRODUCTS
        from .selectors import customer_change_detail
        from .services import APPROVAL_KINDS, DERIVED_FIELDS

        for kind, handler in APPROVAL_KINDS.items():
            register_kind(kind, handler)
        register_request_detail("CUSTOMER_CHANGE", customer_change_detail)
        refdata.register(PRODUCTS, "loans.LoanProduct")
        # The customer's page: loans draws these; mandates (30) and payments (40) add theirs.
        register_customer_panel("loans", customer_loans_panel, order=10)
        register_customer_panel("notifications", customer_notifications_panel, order=90)

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
