from rest_framework import serializers

from api.fields import AmountField, AsciiDateField, AsciiRegexField, TextField
from api.schema import ErrorDetailSerializer, PerItemListField
from payments.services import MODES, PaymentInput

LOAN_NUMBER = r"^[A-Za-z]{2}[0-9]{10}$"


class PaymentInSerializer(serializers.Serializer):
    loan_account = AsciiRegexField(
        LOAN_NUMBER, max_length=12, help_text="Loan account number, e.g. LN0000000042."
    )
    amount = AmountField(
        help_text='Rupees as a string with at most two decimals: "1500.00"; more than zero '
        "and at most the limit (PAYMENTS_MAX_AMOUNT), as the pattern says."
    )
    mode = serializers.ChoiceField(choices=MODES)
    business_date = AsciiDateField(
        required=False,
        allow_null=True,
        help_text="The date the payment counts for; by default from the branch's cut-off.",
    )
    receipt_number = TextField(max_length=40, required=False, allow_blank=True)
    collector = TextField(max_length=80, required=False, allow_blank=True)
    external_reference = TextField(max_length=80, required=False, allow_blank=True)

    def to_payment(self) -> PaymentInput:
        data = self.validated_data
        return PaymentInput(
            loan_number=data["loan_account"].upper(),
            amount=data["amount"],
            mode=data["mode"],
            business_date=data.get("business_date"),
            receipt_number=data.get("receipt_number", ""),
            collector=data.get("collector", ""),
            external_reference=data.get("external_reference", ""),
        )


class BatchItemSerializer(PaymentInSerializer):
    idempotency_key = TextField(
        max_length=100,
        required=False,
        help_text="This item's own key; by default the batch's key and the item's position.",
    )


class BatchInSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.DictField(), min_length=1, max_length=100)


class PaymentBatchSerializer(serializers.Serializer):
    """The request body as documented (items are validated one by one, see the view)."""

    items = PerItemListField(
        child=BatchItemSerializer(),
        min_length=1,
        max_length=100,
        help_text="1 to 100 payments. An item that is not a valid BatchItem is answered in "
        "its own result (status 400, code `invalid`); the others are still recorded.",
    )


class TransactionSerializer(serializers.Serializer):
    """The response body of a transaction (built by payments.services.transaction_body)."""

    txn_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["RECEIVED", "POSTED", "FAILED", "REVERSED"])
    loan_account = serializers.CharField()
    amount = serializers.CharField(help_text="Rupees with two decimals.")
    mode = serializers.ChoiceField(choices=MODES)
    business_date = serializers.DateField()
    receipt_number = serializers.CharField(allow_blank=True)
    collector = serializers.CharField(allow_blank=True)
    external_reference = serializers.CharField(allow_blank=True)
    created_at = serializers.CharField()
    posted_at = serializers.CharField(allow_null=True)
    failure_reason = serializers.CharField(allow_null=True)


class BatchResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.IntegerField(help_text="The HTTP status this item would have alone.")
    replayed = serializers.BooleanField()
    transaction = TransactionSerializer(required=False)
    error = ErrorDetailSerializer(required=False)


class BatchOutSerializer(serializers.Serializer):
    results = BatchResultSerializer(many=True)


class TransactionFilterSerializer(serializers.Serializer):
    """The list's query parameters, checked as text (a NUL character, which PostgreSQL
    refuses, is a 400 here); the selectors check what they mean."""

    loan_account = serializers.CharField(required=False, allow_blank=True)
    branch = serializers.CharField(required=False, allow_blank=True)
    business_date = AsciiDateField(required=False, allow_null=True)


class TransactionListSerializer(serializers.Serializer):
    results = TransactionSerializer(many=True)
    next = serializers.CharField(allow_null=True)
