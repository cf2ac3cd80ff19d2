"""The admin's forms for members of staff: once the model's own checks pass, the rules of
``accounts.services.user_check`` (the same the services apply when saving) show as field
messages. The admin sets ``actor``."""

from __future__ import annotations

from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError

from .services import user_check


class StaffFormMixin:
    actor = None

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            return
        try:
            user_check(user=self.instance, actor=self.actor, groups=self.cleaned_data.get("groups"))
        except ValidationError as exc:
            self._update_errors(exc)


class StaffCreationForm(StaffFormMixin, AdminUserCreationForm):
    pass


class StaffChangeForm(StaffFormMixin, UserChangeForm):
    pass
