import re
from datetime import time
from decimal import Decimal

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from core.money import MoneyField

CODE_VALIDATOR = RegexValidator(r"^[A-Z0-9-]{2,12}$", "Use 2 to 12 capital letters, digits or '-'.")
MOBILE_VALIDATOR = RegexValidator(
    r"^[6-9][0-9]{9}$", "Enter a 10-digit Indian mobile number starting with 6, 7, 8 or 9."
)

# Income Tax Act s.269ST: no one may receive ₹2,00,000 or more in cash in one transaction.
CASH_RECEIPT_CEILING = Decimal("200000.00")


def mobile_digits(text: str) -> str:
    """A mobile number as people type it (spaces, dashes, brackets, a +91, 91 or 0 prefix)
    as the 10 digits it is stored as; other text comes back without its separators (so
    ``MOBILE_VALIDATOR`` refuses it)."""
    digits = re.sub(r"[\s().-]", "", text or "").removeprefix("+")
    if len(digits) == 12 and digits.startswith("91"):
        return digits[2:]
    if len(digits) == 11 and digits.startswith("0"):
        return digits[1:]
    return digits


class Region(models.Model):
    SCOPE_BRANCH_PATH = "areas__branches__id"

    code = models.CharField(max_length=12, unique=True, validators=[CODE_VALIDATOR])
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Area(models.Model):
    SCOPE_BRANCH_PATH = "branches__id"

    code = models.CharField(max_length=12, unique=True, validators=[CODE_VALIDATOR])
    name = models.CharField(max_length=100)
    region = models.ForeignKey(Region, on_delete=models.PROTECT, related_name="areas")

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class Branch(models.Model):
    SCOPE_BRANCH_PATH = "id"

    code = models.CharField(max_length=12, unique=True, validators=[CODE_VALIDATOR])
    name = models.CharField(max_length=100)
    area = models.ForeignKey(Area, on_delete=models.PROTECT, related_name="branches")
    state = models.CharField(max_length=50)
    cash_in_hand_limit = MoneyField(
        default=Decimal("200000.00"),
        validators=[MinValueValidator(Decimal("0"))],
    )
    cash_receipt_limit = MoneyField(
        default=CASH_RECEIPT_CEILING,
        validators=[MinValueValidator(Decimal("1.00")), MaxValueValidator(CASH_RECEIPT_CEILING)],
        help_text="A cash receipt at the desk must be below this amount. Income Tax s.269ST "
        "bars receiving ₹2,00,000 or more in cash, so it cannot be set higher.",
    )
    cutoff_time = models.TimeField(
        default=time(18, 0), help_text="Payments after this IST time count for the next day."
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "branches"
        constraints = [
            models.CheckConstraint(
                condition=Q(cash_in_hand_limit__gte=0), name="branch_cash_limit_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


HOME_FIELD_BY_LEVEL = {"BRANCH": "home_branch", "AREA": "home_area", "REGION": "home_region"}


class User(AbstractUser):
    """A member of staff. Their place in the hierarchy decides what they may see."""

    class Level(models.TextChoices):
        BRANCH = "BRANCH", "Branch"
        AREA = "AREA", "Area"
        REGION = "REGION", "Region"
        HEAD_OFFICE = "HEAD_OFFICE", "Head office"

    SCOPE_BRANCH_PATH = "home_branch"

    employee_code = models.CharField(max_length=20, unique=True, null=True, blank=True)
    mobile = models.CharField(max_length=10, blank=True, validators=[MOBILE_VALIDATOR])
    level = models.CharField(max_length=12, choices=Level.choices, default=Level.HEAD_OFFICE)
    home_branch = models.ForeignKey(
        Branch, null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    home_area = models.ForeignKey(
        Area, null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )
    home_region = models.ForeignKey(
        Region, null=True, blank=True, on_delete=models.PROTECT, related_name="staff"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="user_home_matches_level",
                condition=(
                    Q(
                        level="BRANCH",
                        home_branch__isnull=False,
                        home_area__isnull=True,
                        home_region__isnull=True,
                    )
                    | Q(
                        level="AREA",
                        home_branch__isnull=True,
                        home_area__isnull=False,
                        home_region__isnull=True,
                    )
                    | Q(
                        level="REGION",
                        home_branch__isnull=True,
                        home_area__isnull=True,
                        home_region__isnull=False,
                    )
                    | Q(
                        level="HEAD_OFFICE",
                        home_branch__isnull=True,
                        home_area__isnull=True,
                        home_region__isnull=True,
                    )
                ),
            )
        ]

    def clean(self) -> None:
        super().clean()
        wanted = HOME_FIELD_BY_LEVEL.get(self.level)
        errors = {}
        for level, field in HOME_FIELD_BY_LEVEL.items():
            is_set = getattr(self, f"{field}_id") is not None
            if field == wanted and not is_set:
                errors[field] = f"Choose the {level.lower()} of a {level.lower()}-level user."
            elif field != wanted and is_set:
                errors[field] = f"Only a {level.lower()}-level user has a {level.lower()}."
        if errors:
            raise ValidationError(errors)
