import re

from django import forms
from django.core.validators import RegexValidator

from accounts.models import Branch
from core.forms import AsciiDateField, AsciiModelChoiceField
from loans.models import CollectionAccount

from .models import Deposit
from .services import deposit_problems


class DepositForm(forms.ModelForm):
    """The admin's deposit form; the checks are the service's (``deposit_problems``)."""

    class Meta:
        model = Deposit
        fields = [
            "branch",
            "deposit_date",
            "collection_account",
            "slip_number",
            "amount",
            "slip_scan",
        ]

    def clean(self):
        cleaned = super().clean()
        branch = cleaned.get("branch")
        scan = cleaned.get("slip_scan")
        problems = deposit_problems(
            branch_id=branch.pk if branch else None,
            deposit_date=cleaned.get("deposit_date"),
            collection_account=cleaned.get("collection_account"),
            slip_number=cleaned.get("slip_number") or "",
            amount=cleaned.get("amount"),
            slip_scan=scan if "slip_scan" in self.changed_data and scan else None,
            exclude_pk=self.instance.pk,
        )
        for field, message in problems.items():
            if field in self.fields and field not in self.errors:
                self.add_error(field, message)
        return cleaned


class BuildForm(forms.Form):
    """Build or refresh DCRs on demand: one branch (or all the user may see), a date or
    a range."""

    branch = AsciiModelChoiceField(
        queryset=Branch.objects.none(), required=False, empty_label="every branch I may see"
    )
    date_from = forms.DateField(
        label="Business date", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To (optional)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, branches=None, **kwargs):
        super().__init__(*args, **kwargs)
        if branches is not None:
            self.fields["branch"].queryset = branches

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned


class StatementUploadForm(forms.Form):
    collection_account = AsciiModelChoiceField(
        queryset=CollectionAccount.objects.filter(is_active=True).select_related("partner")
    )
    file = forms.FileField(
        help_text="CSV with the columns date, narration, reference (slip number), credit."
    )


class ExportFilterForm(forms.Form):
    """The query string of a DCR/DBS export: ``from``, ``to`` (ISO dates), ``status`` (an
    unknown one is ignored, as before) and ``branch`` (a branch code)."""

    to = AsciiDateField(required=False, input_formats=["%Y-%m-%d"])
    status = forms.Field(required=False)  # any text: compared with the statuses only
    branch = forms.CharField(
        required=False,
        validators=[
            RegexValidator(r"^[A-Za-z0-9-]{1,12}$", "is not a branch code", flags=re.ASCII)
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from"] = AsciiDateField(required=False, input_formats=["%Y-%m-%d"])

    def problem(self) -> str:
        """The errors as one line, e.g. ``branch: is not a branch code``."""
        return "; ".join(f"{name}: {' '.join(errors)}" for name, errors in self.errors.items())
