"""Loan accounts as the API shows them: amounts as strings with two decimals (never
floats); the customer's name and number only (never mobile, PAN or bank details)."""

from __future__ import annotations

from rest_framework import serializers

from loans.models import LoanAccount


class LoanAccountSerializer(serializers.ModelSerializer):
    customer_number = serializers.CharField(source="customer.customer_number", read_only=True)
    customer_name = serializers.CharField(source="customer.name", read_only=True)
    branch_code = serializers.CharField(source="branch.code", read_only=True)
    product_code = serializers.CharField(source="product.code", read_only=True)
    total_outstanding = serializers.DecimalField(
        max_digits=16, decimal_places=2, coerce_to_string=True, read_only=True
    )

    class Meta:
        model = LoanAccount
        fields = [
            "loan_number",
            "status",
            "customer_number",
            "customer_name",
            "branch_code",
            "product_code",
            "sanctioned_amount",
            "disbursed_amount",
            "interest_rate",
            "tenure_months",
            "emi_amount",
            "due_day",
            "disbursed_on",
            "outstanding_principal",
            "outstanding_interest",
            "outstanding_charges",
            "total_outstanding",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields
        extra_kwargs = {
            name: {"coerce_to_string": True}
            for name in (
                "sanctioned_amount",
                "disbursed_amount",
                "interest_rate",
                "emi_amount",
                "outstanding_principal",
                "outstanding_interest",
                "outstanding_charges",
            )
        }
