from django.contrib.auth.models import Group, Permission

from .roles import sync_roles


def sync_roles_after_migrate(**kwargs) -> None:
    """New models' permissions join the roles that their patterns name (adding only)."""
    sync_roles(Group, Permission, replace=False)
