"""Branches (with their area and region, created when new) and members of staff."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group

from accounts.models import (
    CASH_RECEIPT_CEILING,
    CODE_VALIDATOR,
    HOME_FIELD_BY_LEVEL,
    MOBILE_VALIDATOR,
    Area,
    Branch,
    Region,
    User,
    mobile_digits,
)
from accounts.roles import ROLES
from accounts.services import user_create, user_update

from ..exceptions import RowRefused
from .base import (
    CREATED,
    UNCHANGED,
    UPDATED,
    BoolCell,
    ChoiceCell,
    CodeCell,
    Importer,
    MoneyCell,
    changed_fields,
)


class BranchRow(forms.Form):
    code = CodeCell(max_length=12, validators=[CODE_VALIDATOR], help_text="The branch code.")
    name = forms.CharField(max_length=100, help_text="The branch's name.")
    state = forms.CharField(max_length=50, help_text="The Indian state it is in.")
    area_code = CodeCell(
        max_length=12, validators=[CODE_VALIDATOR], help_text="Its area; created when new."
    )
    area_name = forms.CharField(
        max_length=100, required=False, help_text="The area's name (needed for a new area)."
    )
    region_code = CodeCell(
        max_length=12, validators=[CODE_VALIDATOR], help_text="The area's region; created when new."
    )
    region_name = forms.CharField(
        max_length=100, required=False, help_text="The region's name (needed for a new region)."
    )
    cash_in_hand_limit = MoneyCell(
        required=False, help_text="Cash the branch may hold overnight (default ₹2,00,000)."
    )
    cash_receipt_limit = MoneyCell(
        required=False,
        min_value=Decimal("1.00"),
        max_value=CASH_RECEIPT_CEILING,
        help_text="A cash receipt must be below this (default and most ₹2,00,000, s.269ST).",
    )
    cutoff_time = forms.TimeField(
        required=False, help_text="IST time after which payments count for the next day (18:00)."
    )


class BranchImporter(Importer):
    kind = "branches"
    title = "Branches"
    form_class = BranchRow
    key_column = "code"
    examples = {
        "code": "PUN01",
        "name": "Pune Camp",
        "state": "Maharashtra",
        "area_code": "PUN",
        "area_name": "Pune",
        "region_code": "WEST",
        "region_name": "West",
        "cash_in_hand_limit": "300000.00",
        "cash_receipt_limit": "199999.00",
        "cutoff_time": "18:30",
    }

    def write(self, data) -> str:
        region = self._place(Region, data["region_code"], data["region_name"], "region")
        area = self._place(Area, data["area_code"], data["area_name"], "area", region=region)
        if area.region_id != region.pk:
            raise RowRefused("region_code", f"Area {area.code} is in region {area.region.code}.")
        values = {"name": data["name"], "state": data["state"], "area": area}
        for name in ("cash_in_hand_limit", "cash_receipt_limit", "cutoff_time"):
            if data[name] is not None:
                values[name] = data[name]
        branch = Branch.objects.select_for_update().filter(code=data["code"]).first()
        if branch is None:
            if not self.sees_everything():
                raise RowRefused("code", "Only a user who sees every branch adds branches.")
            branch = Branch(code=data["code"], **values)
            branch.full_clean()
            branch.save()
            return CREATED
        self.check_scope(branch.pk, "code")
        if not changed_fields(branch, values):
            return UNCHANGED
        if not self.sees_everything():
            raise RowRefused("code", "Only a user who sees every branch changes branches.")
        branch.full_clean()
        branch.save()
        return UPDATED

    def _place(self, model, code: str, name: str, what: str, **parent):
        place = model.objects.filter(code=code).first()
        if place is not None:
            return place
        if not name:
            raise RowRefused(f"{what}_name", f"The {what} {code} is new: give its name.")
        if not self.sees_everything():
            raise RowRefused(f"{what}_code", f"Only a user who sees every branch adds {what}s.")
        place = model(code=code, name=name, **parent)
        place.full_clean()
        place.save()
        return place


class UserRow(forms.Form):
    username = forms.CharField(max_length=150, help_text="The login name.")
    first_name = forms.CharField(max_length=150, help_text="First name.")
    last_name = forms.CharField(max_length=150, required=False, help_text="Last name.")
    email = forms.EmailField(required=False, help_text="Email (where the welcome goes).")
    employee_code = forms.CharField(
        max_length=20, required=False, help_text="The HR employee code (unique)."
    )
    mobile = forms.CharField(
        required=False, help_text="10-digit mobile (spaces, +91 or a leading 0 are removed)."
    )
    level = ChoiceCell(choices=User.Level.choices, help_text="BRANCH, AREA, REGION or HEAD_OFFICE.")
    home_code = CodeCell(
        max_length=12,
        required=False,
        help_text="The code of their branch, area or region (as the level says; none for "
        "head office).",
    )
    roles = forms.CharField(
        required=False,
        help_text=f"Roles separated by ';' ({', '.join(ROLES)}).",
    )
    is_active = BoolCell(required=False, help_text="Y (default) or N.")

    def clean_mobile(self):
        mobile = mobile_digits(self.cleaned_data["mobile"])
        if mobile:
            MOBILE_VALIDATOR(mobile)
        return mobile

    def clean_roles(self):
        names = [name.strip() for name in self.cleaned_data["roles"].split(";") if name.strip()]
        unknown = [name for name in names if name not in ROLES]
        if unknown:
            raise forms.ValidationError(f"Unknown role(s): {', '.join(unknown)}.")
        return names

    def clean_is_active(self):
        return self.cleaned_data["is_active"] or self.data.get("is_active", "").strip() == ""


class UserImporter(Importer):
    kind = "users"
    title = "Staff users"
    form_class = UserRow
    key_column = "username"
    examples = {
        "username": "asha.patil",
        "first_name": "Asha",
        "last_name": "Patil",
        "email": "asha.patil@example.com",
        "employee_code": "E10452",
        "mobile": "9876543210",
        "level": "BRANCH",
        "home_code": "PUN01",
        "roles": "Branch Staff",
        "is_active": "Y",
    }

    def key_of(self, cells):
        return cells.get("username", "").strip()[:60]

    def write(self, data) -> str:
        level = data["level"]
        values = {
            "first_name": data["first_name"],
            "last_name": data["last_name"],
            "email": data["email"],
            "employee_code": data["employee_code"] or None,
            "mobile": data["mobile"],
            "level": level,
            "is_active": data["is_active"],
            **self._home(level, data["home_code"]),
        }
        groups = list(Group.objects.filter(name__in=data["roles"]))
        user = User.objects.filter(username=data["username"]).first()
        if user is None:
            # no password: they set one through "forgot password" (an unusable hash)
            user_create(
                actor=self.actor,
                groups=groups,
                username=data["username"],
                password=make_password(None),
                **values,
            )
            return CREATED
        if user.home_branch_id is not None:
            self.check_scope(user.home_branch_id, "username")
        elif not self.sees_everything():
            raise RowRefused("username", "The user works outside your branches.")
        changed = changed_fields(user, values)
        same_roles = set(user.groups.values_list("name", flat=True)) == set(data["roles"])
        if not changed and same_roles:
            return UNCHANGED
        user_update(user_id=user.pk, actor=self.actor, groups=groups, **values)
        return UPDATED

    def _home(self, level: str, code: str) -> dict:
        homes = {field: None for field in HOME_FIELD_BY_LEVEL.values()}
        field = HOME_FIELD_BY_LEVEL.get(level)
        if field is None:
            if code:
                raise RowRefused("home_code", "A head-office user has no home branch or area.")
            return homes
        model = {"home_branch": Branch, "home_area": Area, "home_region": Region}[field]
        if not code:
            raise RowRefused("home_code", f"Give the code of the user's {level.lower()}.")
        home = model.objects.filter(code=code).first()
        if home is None:
            raise RowRefused("home_code", f"No {level.lower()} has the code {code}.")
        homes[field] = home
        return homes
