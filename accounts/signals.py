from django.contrib.auth.models import Group, Permission
from django.dispatch import Signal

from .roles import sync_roles

# A member of staff was created (``user_create``), sent once the transaction committed, with
# ``user``. Apps that act on it connect in their AppConfig.ready() (notifications: the
# welcome), so that accounts, below them, imports none of them.
user_created = Signal()


def sync_roles_after_migrate(**kwargs) -> None:
    """New models' permissions join the roles that their patterns name (adding only)."""
    sync_roles(Group, Permission, replace=False)
