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
