"""The collection sheet's filters (a GET form): business date, area and branch (for users
above a branch), bucket and collection officer."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from accounts.models import Branch, User
from core.clock import business_date
from core.forms import AsciiDateField, AsciiModelChoiceField
from loans.models import LoanAccount

from .sheet_selectors import UNASSIGNED, SheetFilters, sheet_areas, sheet_branches, sheet_collectors


def branch_business_date(branch: Branch):
    """The date a payment taken at the branch now counts for: today in IST, or the next
    day after the branch's cut-off (as the ingestion dates it)."""
    return business_date(timezone.now(), branch.cutoff_time)


def person(user: User) -> str:
    return user.get_full_name() or user.username


class SheetFilterForm(forms.Form):
    """A branch user's branch is theirs (no choice); a user above a branch picks an area
    (optional, it narrows the branches) and one of their branches. A branch that is not
    in the chosen area, or not the user's to see, is a field message. The collector
    choices are the chosen branch's staff."""

    date = AsciiDateField(
        label="Business date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Today's (after the branch's cut-off: the next day's) when left empty.",
    )
    area = AsciiModelChoiceField(queryset=None, required=False, empty_label="All my areas")
    branch = AsciiModelChoiceField(queryset=None, required=False, empty_label="Pick a branch")
    bucket = forms.ChoiceField(
        choices=[("", "All buckets"), *LoanAccount.Bucket.choices], required=False
    )
    collector = forms.ChoiceField(label="Collection officer", required=False)

    def __init__(self, data, *, user: User):
        super().__init__(data)
        self.user = user
        self.home_branch: Branch | None = None
        if user.level == User.Level.BRANCH:
            self.home_branch = sheet_branches(user=user).filter(pk=user.home_branch_id).first()
            del self.fields["area"], self.fields["branch"]
        else:
            self.fields["area"].queryset = sheet_areas(user=user)
            self.fields["branch"].queryset = sheet_branches(user=user)
            self.fields["branch"].label_from_instance = lambda b: f"{b.code} {b.name}"
        branch = self.home_branch or self._raw_branch()
        officers = sheet_collectors(branch_id=branch.pk) if branch else []
        self.fields["collector"].choices = [
            ("", "All officers"),
            (UNASSIGNED, "Not assigned"),
            *((str(u.pk), person(u)) for u in officers),
        ]

    def _raw_branch(self) -> Branch | None:
        """The branch asked for, to offer its staff as collectors (validated in clean)."""
        value = (self.data.get("branch") or "").strip()
        if not value.isascii() or not value.isdigit():
            return None
        return self.fields["branch"].queryset.filter(pk=int(value)).first()

    def clean(self):
        cleaned = super().clean()
        area, branch = cleaned.get("area"), cleaned.get("branch")
        if area is not None and branch is not None and branch.area_id != area.pk:
            self.add_error("branch", f"{branch.code} is not in {area.name}.")
        return cleaned

    def branch_chosen(self) -> Branch | None:
        """The sheet's branch once the form is valid: the user's own, the one picked, or
        the only one the user may see (or the only one of the chosen area)."""
        if self.home_branch is not None:
            return self.home_branch
        branch = self.cleaned_data.get("branch")
        if branch is not None:
            return branch
        area = self.cleaned_data.get("area")
        choices = sheet_branches(user=self.user, area_id=area.pk if area else None)
        only = list(choices[:2])
        return only[0] if len(only) == 1 else None

    def filters(self, branch: Branch) -> SheetFilters:
        data = self.cleaned_data
        return SheetFilters(
            branch_id=branch.pk,
            business_date=data.get("date") or branch_business_date(branch),
            bucket=data.get("bucket") or "",
            collector=data.get("collector") or "",
        )
