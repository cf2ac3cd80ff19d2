from rest_framework import serializers

from api.fields import AsciiRegexField, TextField
from api.schema import ErrorDetailSerializer, PerItemListField

MAX_RESULTS = 500


class PartnerResultSerializer(serializers.Serializer):
    execution_id = AsciiRegexField(
        r"^[A-Za-z0-9-]{1,40}$", max_length=40, help_text="The execution id we presented."
    )
    status = serializers.ChoiceField(choices=["SUCCESS", "BOUNCED"])
    return_code = TextField(
        max_length=4,
        required=False,
        allow_blank=True,
        default="",
        help_text="The NACH return code of a bounce (required with BOUNCED).",
    )
    reason = TextField(
        max_length=200, required=False, allow_blank=True, default="", help_text="Free text."
    )

    def validate(self, attrs):
        if attrs["status"] == "BOUNCED" and not attrs["return_code"]:
            raise serializers.ValidationError({"return_code": "A bounce needs its return code."})
        if attrs["status"] == "SUCCESS" and attrs["return_code"]:
            raise serializers.ValidationError({"return_code": "A success has no return code."})
        return attrs


class ResultsBodySerializer(serializers.Serializer):
    results = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        max_length=MAX_RESULTS,
        help_text=f"1 to {MAX_RESULTS} results, each a PartnerResult.",
    )


class PartnerResultsSerializer(serializers.Serializer):
    """The request body as documented (items are validated one by one, see the view)."""

    results = PerItemListField(
        child=PartnerResultSerializer(),
        min_length=1,
        max_length=MAX_RESULTS,
        help_text=f"1 to {MAX_RESULTS} results. A result that is not a valid PartnerResult "
        "gets the error `invalid` in its own outcome; the others are still applied.",
    )


class ResultOutcomeSerializer(serializers.Serializer):
    execution_id = serializers.CharField(allow_null=True)
    outcome = serializers.ChoiceField(
        choices=["applied", "duplicate"],
        required=False,
        help_text="applied: recorded now; duplicate: the same result was recorded before.",
    )
    error = ErrorDetailSerializer(
        required=False,
        help_text="Instead of an outcome: e.g. result_conflict (another result was "
        "recorded for this execution), execution_not_found, invalid_result, invalid.",
    )


class PartnerResultsOutcomeSerializer(serializers.Serializer):
    results = ResultOutcomeSerializer(many=True, help_text="One per result, in order.")
