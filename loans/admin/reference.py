"""The reference data: loan products, banking partners and their collection accounts."""

from django.contrib import admin

from core.admin.base import BackOfficeModelAdmin

from ..models import BankingPartner, CollectionAccount, LoanProduct


@admin.register(LoanProduct)
class LoanProductAdmin(BackOfficeModelAdmin):
    list_display = [
        "code",
        "name",
        "interest_rate",
        "min_tenure_months",
        "max_tenure_months",
        "emi_frequency",
        "bounce_charge",
        "gst_rate_on_charges",
        "is_active",
    ]
    list_filter = ["emi_frequency", "is_active"]
    search_fields = ["code", "name"]


class CollectionAccountInline(admin.TabularInline):
    model = CollectionAccount
    extra = 0


@admin.register(BankingPartner)
class BankingPartnerAdmin(BackOfficeModelAdmin):
    list_display = ["name", "code", "ifsc", "nach_utility_code", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "code", "ifsc"]
    inlines = [CollectionAccountInline]


@admin.register(CollectionAccount)
class CollectionAccountAdmin(BackOfficeModelAdmin):
    list_display = ["account_name", "partner", "account_number_masked", "ifsc", "is_active"]
    list_select_related = ["partner"]
    list_filter = ["partner", "is_active"]
    search_fields = ["account_name", "=account_number"]
