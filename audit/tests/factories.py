import factory
from django.contrib.auth import get_user_model

from accounts.tests.factories import AreaFactory, BranchFactory, RegionFactory

__all__ = ["PASSWORD", "AreaFactory", "BranchFactory", "RegionFactory", "UserFactory"]

PASSWORD = "Str0ng-pass-2026"


class UserFactory(factory.django.DjangoModelFactory):
    """Built through ``create_user`` (a hashed password), as the real paths do: the audit
    tests follow a user from creation on (accounts' factory sets a role and a home)."""

    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        password = kwargs.pop("password", PASSWORD)
        return model_class._default_manager.create_user(*args, password=password, **kwargs)
