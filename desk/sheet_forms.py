"""The collection sheet's filters (a GET form): business date, area and branch (for users
above a branch), bucket and collection officer."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Area, Branch, User
from core.clock import business_date
from core.forms import AsciiDateField, AsciiModelChoiceField, refuse_non_ascii
from loans.models import LoanAccount

from .sheet_selectors import UNASSIGNED, SheetFilters, sheet_branches, sheet_collectors


def branch_business_date(branch: Branch):
    """The date a payment taken at the branch now counts for: today in IST, or the next
    day after the branch's cut-off (as the ingestion dates it)."""
    return business_date(timezone.now(), branch.cutoff_time)


def person(user: User) -> str:
    return user.get_full_name() or user.username


class LoadedChoiceField(AsciiModelChoiceField):
    """A model choice among instances already loaded (``load``): validating and rendering
    it ask the database nothing. Messages as Django's ``ModelChoiceField``."""

    def load(self, objects, label=str) -> None:
        self.loaded = {str(obj.pk): obj for obj in objects}
        shown = ((key, label(obj)) for key, obj in self.loaded.items())
        self.choices = [("", self.empty_label), *shown]

    def to_python(self, value):
        refuse_non_ascii(value)
        if value in self.empty_values:
            return None
        found = self.loaded.get(str(value).strip())
        if found is None:
            raise ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": value},
            )
        return found


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
    area = LoadedChoiceField(
        queryset=Area.objects.none(), required=False, empty_label="All my areas"
    )
    branch = LoadedChoiceField(
        queryset=Branch.objects.none(), required=False, empty_label="Pick a branch"
    )
    bucket = forms.ChoiceField(
        choices=[("", "All buckets"), *LoanAccount.Bucket.choices], required=False
    )
    collector = forms.ChoiceField(label="Collection officer", required=False)

    def __init__(self, data, *, user: User):
        super().__init__(data)
        self.user = user
        self.home_branch: Branch | None = None
        self.branches: list[Branch] = []
        if user.level == User.Level.BRANCH:
            self.home_branch = sheet_branches(user=user).filter(pk=user.home_branch_id).first()
            del self.fields["area"], self.fields["branch"]
        else:
            # One query for both lists: the user's branches with their areas.
            self.branches = list(sheet_branches(user=user))
            areas = {branch.area_id: branch.area for branch in self.branches}
            self.fields["area"].load(sorted(areas.values(), key=lambda a: (a.name, a.pk)))
            self.fields["branch"].load(self.branches, label=lambda b: f"{b.code} {b.name}")
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
        return self.fields["branch"].loaded.get(value)

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
        only = [b for b in self.branches if area is None or b.area_id == area.pk][:2]
        return only[0] if len(only) == 1 else None

    def filters(self, branch: Branch) -> SheetFilters:
        data = self.cleaned_data
        return SheetFilters(
            branch_id=branch.pk,
            business_date=data.get("date") or branch_business_date(branch),
            bucket=data.get("bucket") or "",
            collector=data.get("collector") or "",
        )
