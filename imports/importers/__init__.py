"""The importers, by kind, in the order a book is brought in."""

from .base import Importer
from .customers import CustomerImporter
from .history import BalanceImporter, PaymentImporter
from .loans import LoanImporter
from .mandates import MandateImporter
from .places import BranchImporter, UserImporter

IMPORTERS: dict[str, type[Importer]] = {
    importer.kind: importer
    for importer in (
        BranchImporter,
        UserImporter,
        CustomerImporter,
        LoanImporter,
        MandateImporter,
        BalanceImporter,
        PaymentImporter,
    )
}

__all__ = ["IMPORTERS", "Importer"]
