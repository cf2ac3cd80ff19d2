"""Loan products as cached reference data (refdata.cache): every bounce reads its product's
charge. Registered in LoansConfig.ready()."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from refdata import cache as refdata

PRODUCTS = "product"


@dataclass(frozen=True)
class ProductRef:
    id: int
    code: str
    name: str
    emi_frequency: str
    bounce_charge: Decimal
    gst_rate_on_charges: Decimal
    is_active: bool

    @property
    def pk(self) -> int:
        return self.id


def loan_product(product_id: int) -> ProductRef | None:
    key = str(int(product_id))
    return refdata.cached(PRODUCTS, [key], refdata.rows_by_id("loans.LoanProduct", ProductRef)).get(
        key
    )
