"""The one function that decides what a user may see.

Every branch-owned model names the path from itself to its ``Branch`` in a class
attribute ``SCOPE_BRANCH_PATH`` (``"branch"`` for a loan account, ``"loan__branch"``
for an instalment, ``"id"`` for a branch itself). The admin, the workflow screens and
the API all filter through :func:`scope_queryset`, or, on a path where the ORM costs too
much (a payment's loan, read for every payment), through its raw-SQL form
:func:`scope_sql`; nothing else filters by branch.

- Branch staff and branch managers: their branch.
- Area level: the branches of their area.
- Region level: the branches of their region's areas.
- Head office, the Auditor role and superusers: everything.
- An API client (a principal with ``is_api_client``, see ``api.principal``): every branch
  when its client has ``all_branches``, else its client's ``allowed_branches``.
- An inactive or anonymous user: nothing.
"""

from __future__ import annotations

from django.db.models import Model, QuerySet

from .models import Branch, User

AUDITOR_GROUP = "Auditor"


def sees_everything(user: User) -> bool:
    if getattr(user, "is_api_client", False):
        return user.api_client.all_branches
    if user.is_superuser or user.level == User.Level.HEAD_OFFICE:
        return True
    auditor = getattr(user, "_is_auditor", None)  # one query per request, not per call
    if auditor is None:
        auditor = user._is_auditor = user.groups.filter(name=AUDITOR_GROUP).exists()
    return auditor


def head_office_only(queryset: QuerySet, user) -> QuerySet:
    """Data that spans branches (a collection account's statement, a daily job, the day's
    presentation to a bank): only for users who see every branch."""
    if user.is_authenticated and user.is_active and sees_everything(user):
        return queryset
    return queryset.none()


def visible_branch_ids(user: User) -> set[int] | None:
    """The ids of the branches a user may see, or ``None`` for all of them."""
    if not user.is_authenticated or not user.is_active:
        return set()
    cached = getattr(user, "_visible_branch_ids", False)
    if cached is not False:
        return cached
    if sees_everything(user):
        result = None
    elif getattr(user, "is_api_client", False):
        preloaded = getattr(user, "allowed_branch_ids", None)  # read with the client
        if preloaded is not None:
            result = set(preloaded)
        else:
            result = set(user.api_client.allowed_branches.values_list("id", flat=True))
    else:
        result = home_branch_ids(user)
    user._visible_branch_ids = result
    return result


def home_branch_ids(user: User) -> set[int]:
    """The branches of a user's home, as their level says: their branch, their area's or
    their region's branches (none for head office, which is not a place but everything)."""
    if user.level == User.Level.BRANCH:
        return {user.home_branch_id}
    if user.level == User.Level.AREA:
        return set(Branch.objects.filter(area_id=user.home_area_id).values_list("id", flat=True))
    if user.level == User.Level.REGION:
        return set(
            Branch.objects.filter(area__region_id=user.home_region_id).values_list("id", flat=True)
        )
    return set()


def scope_path(model: type[Model]) -> str:
    try:
        return model.SCOPE_BRANCH_PATH
    except AttributeError:
        raise TypeError(f"{model.__name__} does not declare SCOPE_BRANCH_PATH") from None


def scope_queryset(queryset: QuerySet, user: User) -> QuerySet:
    """Restrict any queryset of a branch-owned model to what ``user`` may see."""
    branch_ids = _unread_client_branches(user)
    if branch_ids is None:
        branch_ids = visible_branch_ids(user)
        if branch_ids is None:
            return queryset
        if not branch_ids:
            return queryset.none()
        branch_ids = sorted(branch_ids)
    path = scope_path(queryset.model)
    lookup = f"{path}__in" if path == "id" or path.endswith("__id") else f"{path}_id__in"
    queryset = queryset.filter(**{lookup: branch_ids})
    # Region and Area reach their branches through a reverse relation (small tables).
    return queryset.distinct() if "__id" in path else queryset


def scope_sql(user: User, column: str) -> tuple[str, list]:
    """:func:`scope_queryset` as a raw-SQL condition on ``column`` (a branch id column):
    ``(condition, params)`` to AND into a query's WHERE; the same rule, one place."""
    branch_ids = _unread_client_branches(user)
    if branch_ids is not None:
        subquery, params = branch_ids.query.sql_with_params()
        return f"{column} IN ({subquery})", list(params)
    branch_ids = visible_branch_ids(user)
    if branch_ids is None:
        return "TRUE", []
    if not branch_ids:
        return "FALSE", []
    return f"{column} = ANY(%s)", [sorted(branch_ids)]


def _unread_client_branches(user) -> QuerySet | None:
    """An API client limited to its branches, whose branches this request has not read:
    its allowed branches as a subquery, so that a scoped read (a payment's loan) is one
    query instead of two. None otherwise (the set, cached on the principal, is used)."""
    if not getattr(user, "is_api_client", False) or not user.is_active:
        return None
    if getattr(user, "_visible_branch_ids", False) is not False or sees_everything(user):
        return None
    if getattr(user, "allowed_branch_ids", None) is not None:  # read with the client
        return None
    return user.api_client.allowed_branches.values("id")


def can_see_branch(user: User, branch_id: int) -> bool:
    branch_ids = visible_branch_ids(user)
    return branch_ids is None or branch_id in branch_ids
