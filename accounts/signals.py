from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.dispatch import Signal

from .roles import sync_roles

# A member of staff was created (``user_create``), sent once the transaction committed, with
# ``user``. Apps that act on it connect in their AppConfig.ready() (notifications: the
# welcome), so that accounts, below them, imports none of them.
user_created = Signal()


def sync_roles_after_migrate(app_config, **kwargs) -> None:
    """New models' permissions join the roles that their patterns name (adding only).

    ``post_migrate`` is sent once per app with models, each time after that app's
    permissions were created: the roles are synced once, at the last app's, when every
    permission exists (each flush of a transactional test sends it too: once, not 16 times)."""
    with_models = [config for config in apps.get_app_configs() if config.models_module]
    if app_config is with_models[-1]:
        sync_roles(Group, Permission, replace=False)
