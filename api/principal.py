"""Who an API-key request acts as: not a Django user, but shaped enough like one that
scoping, permissions and the audit trail treat it right."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models.manager import EmptyManager

from .models import ApiClient


class ApiPrincipal:
    """``request.user`` of a request authenticated with an API key.

    - ``is_api_client`` is True; ``api_client`` is the :class:`ApiClient` row.
    - ``pk``/``id`` are None (it is not a user row): the audit trail records no actor id
      and ``get_username()`` (``"api:<name>"``) as the actor.
    - ``has_scope(scope)`` is what :class:`api.permissions.HasScope` asks; Django model
      permissions (``has_perm``) are always False: clients get scopes, never perms.
    - Branch scoping (:func:`accounts.scoping.visible_branch_ids`): every branch when the
      client has ``all_branches``, else its ``allowed_branches``.
    """

    is_api_client = True
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_superuser = False
    is_staff = False
    pk = None
    id = None
    _groups = EmptyManager(Group)
    _user_permissions = EmptyManager(Permission)

    def __init__(self, api_client: ApiClient) -> None:
        self.api_client = api_client
        self.username = f"api:{api_client.name}"

    def __str__(self) -> str:
        return self.username

    def __repr__(self) -> str:
        return f"<ApiPrincipal {self.username} #{self.api_client.pk}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, ApiPrincipal) and other.api_client.pk == self.api_client.pk

    def __hash__(self) -> int:
        return hash(("api", self.api_client.pk))

    @property
    def groups(self):
        return self._groups

    @property
    def user_permissions(self):
        return self._user_permissions

    @property
    def api_client_id(self) -> int:
        return self.api_client.pk

    @property
    def allowed_branch_ids(self) -> frozenset[int] | None:
        """The ids of the client's allowed branches when authentication read them with the
        client (``api.selectors``), else None: scoping then reads them."""
        return getattr(self.api_client, "allowed_branch_ids", None)

    @property
    def banking_partner_id(self) -> int | None:
        return self.api_client.banking_partner_id

    def get_username(self) -> str:
        return self.username

    def has_scope(self, scope: str) -> bool:
        return scope in (self.api_client.scopes or ())

    def has_perm(self, perm: str, obj=None) -> bool:
        return False

    def has_perms(self, perm_list, obj=None) -> bool:
        return False

    def has_module_perms(self, app_label: str) -> bool:
        return False
