"""API clients: integrations and banking partners that call the REST API with a key."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from accounts.models import Branch

from .scopes import validate_scopes


class ApiClient(models.Model):
    """Managed in the admin through :mod:`api.services`: the raw key is never stored."""

    class Kind(models.TextChoices):
        INTEGRATION = "INTEGRATION", "Integration"
        BANKING_PARTNER = "BANKING_PARTNER", "Banking partner"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind, default=Kind.INTEGRATION)
    scopes = models.JSONField(
        default=list, blank=True, validators=[validate_scopes], help_text="What it may do."
    )
    allowed_branches = models.ManyToManyField(
        Branch, blank=True, related_name="api_clients", help_text="The branches it may see."
    )
    all_branches = models.BooleanField(
        default=False, help_text="Head-office integrations: every branch, now and future."
    )
    # By label, as Django relates models across apps: the api app is the plumbing of every
    # app's API (loans' included), so its code imports no domain app above accounts.
    banking_partner = models.ForeignKey(
        "loans.BankingPartner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="api_clients",
        help_text="The partner a banking-partner client speaks for.",
    )
    key_prefix = models.CharField(
        max_length=8,
        unique=True,
        editable=False,
        help_text="The 8 characters after bo_live_: identifies the key, is not the key.",
    )
    key_hash = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    last_used_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Updated at most once a minute."
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"
        constraints = [
            models.CheckConstraint(
                name="api_client_partner_matches_kind",
                condition=Q(kind="BANKING_PARTNER", banking_partner__isnull=False)
                | Q(~Q(kind="BANKING_PARTNER"), banking_partner__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.kind == self.Kind.BANKING_PARTNER and self.banking_partner_id is None:
            raise ValidationError(
                {"banking_partner": "Choose the banking partner this client speaks for."}
            )
        if self.kind != self.Kind.BANKING_PARTNER and self.banking_partner_id is not None:
            raise ValidationError(
                {"banking_partner": "Only a banking-partner client has a banking partner."}
            )
