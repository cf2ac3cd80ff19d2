from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and branches"

    def ready(self) -> None:
        from core.admin.site import register_sidebar_key
        from refdata import cache as refdata

        from .refdata import BRANCHES
        from .scoping import sees_everything
        from .signals import sync_roles_after_migrate

        # Head-office-only lists and the outbox ask it: users who differ in it never share
        # a cached sidebar.
        register_sidebar_key(sees_everything)

        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="accounts_sync_roles")
        refdata.register(BRANCHES, "accounts.Branch")
