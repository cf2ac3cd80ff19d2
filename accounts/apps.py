from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and branches"

    def ready(self) -> None:
        from refdata import cache as refdata

        from .refdata import BRANCHES
        from .signals import sync_roles_after_migrate

        post_migrate.connect(sync_roles_after_migrate, dispatch_uid="accounts_sync_roles")
        refdata.register(BRANCHES, "accounts.Branch")
