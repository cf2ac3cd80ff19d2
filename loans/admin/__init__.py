"""The loans admin, one module a seam: reference (products, partners, collection
accounts), customers (and their bank accounts, the change request page), loan_accounts
(the list, the loan's page, co-borrowers, instalments), charges (waiver requests).
Importing the package registers them all.
"""

from .charges import LoanChargeAdmin, WaiverRequestPage
from .customers import (
    CustomerAdmin,
    CustomerBankAccountAdmin,
    CustomerChangePage,
    customer_key_lookup,
)
from .loan_accounts import (
    BucketFilter,
    CoBorrowerAdmin,
    DuesChangeList,
    InstalmentAdmin,
    LoanAccountAdmin,
    LoanListColumns,
)
from .reference import BankingPartnerAdmin, CollectionAccountAdmin, LoanProductAdmin

__all__ = [
    "BankingPartnerAdmin",
    "BucketFilter",
    "CoBorrowerAdmin",
    "CollectionAccountAdmin",
    "CustomerAdmin",
    "CustomerBankAccountAdmin",
    "CustomerChangePage",
    "DuesChangeList",
    "InstalmentAdmin",
    "LoanAccountAdmin",
    "LoanChargeAdmin",
    "LoanListColumns",
    "LoanProductAdmin",
    "WaiverRequestPage",
    "customer_key_lookup",
]
