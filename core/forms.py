"""The workflow's two forms: a checker's decision (approve or return, with remarks) and a
maker's request with a reason (a reversal, a charge waiver, a mandate stop)."""

from django import forms


class DecisionForm(forms.Form):
    """Approve or return a request. Returning needs remarks (the service checks it too)."""

    APPROVE = "approve"
    RETURN = "return"

    decision = forms.ChoiceField(choices=[(APPROVE, "Approve"), (RETURN, "Return")])
    remarks = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Required to return the request; the maker sees them.",
    )

    @property
    def approve(self) -> bool:
        return self.cleaned_data["decision"] == self.APPROVE

    def clean(self):
        cleaned = super().clean()
        cleaned["remarks"] = (cleaned.get("remarks") or "").strip()
        if cleaned.get("decision") == self.RETURN and not cleaned["remarks"]:
            self.add_error("remarks", "Say why you return it.")
        return cleaned


class ReasonForm(forms.Form):
    """A maker asks for something a checker approves: the reason is required and read by
    the checker. A subclass says what the reason is for (``reason_help``), what to say when
    it is blank (``reason_missing``) and may add fields."""

    reason_help = "Why. A checker reads it."
    reason_missing = "Give a reason."
    reason_rows = 4

    reason = forms.CharField(widget=forms.Textarea(attrs={"cols": 60}), max_length=1000)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].help_text = self.reason_help
        self.fields["reason"].widget.attrs["rows"] = self.reason_rows

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(self.reason_missing)
        return reason
