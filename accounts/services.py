"""Every write to members of staff goes through these services (the admin's add and change
forms call them). Saves are audited by the change tracking (``track("accounts.User")``)."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction

from .models import HOME_FIELD_BY_LEVEL, User
from .scoping import AUDITOR_GROUP, home_branch_ids, scope_queryset, visible_branch_ids
from .signals import user_created


@transaction.atomic
def user_create(*, actor: User | None, groups: Iterable[Group] | None = None, **fields) -> User:
    """A new member of staff, from the fields the admin's add form validated (``password``
    is the hash it made, or an unusable one), checked by :func:`user_check` and announced
    after commit (``accounts.signals.user_created``: notifications sends the welcome).
    ``groups`` (the roles) are checked, and set when given."""
    user = User(**fields)
    user_check(user=user, actor=actor, groups=groups)
    user.save()
    if groups is not None:
        user.groups.set(groups)
    transaction.on_commit(lambda: user_created.send(sender=User, user=user))
    return user


@transaction.atomic
def user_update(
    *, user_id: int, actor: User | None, groups: Iterable[Group] | None = None, **changes
) -> User:
    """Change a member of staff (the fields the admin's change form validated) under the
    row's lock, checked by :func:`user_check`; ``groups`` (the roles) are checked, and set
    when given. A user the actor may not see is not found."""
    users = User.objects.select_for_update()
    if actor is not None:
        users = scope_queryset(users, actor)
    user = users.get(pk=user_id)
    for name, value in changes.items():
        setattr(user, name, value)
    user_check(user=user, actor=actor, groups=groups)
    user.save()
    if groups is not None:
        user.groups.set(groups)
    return user


def user_check(*, user: User, actor: User | None, groups: Iterable[Group] | None = None) -> None:
    """The rules of a member of staff about to be saved (``user`` with its new values, not
    yet saved), by field (``ValidationError``):

    - the model's own: valid fields, unique username and employee code, a home that
      matches the level (a branch-level user has a branch and nothing else, ...);
    - no one gives more than they have: a home among the branches the actor sees; head-office
      level and the Auditor role (every branch) only from an actor who sees every branch;
      only a superuser makes or unmakes a superuser.

    The password is the forms' business (validators, hashing). ``actor`` None is the system
    (commands, data migrations): only the model's rules apply. ``groups`` None: the user's
    roles do not change."""
    errors: dict[str, list] = {}
    try:
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        errors = exc.update_error_dict(errors)
    if actor is not None and not errors:
        errors = _reach_errors(user, actor, groups)
    if errors:
        raise ValidationError(errors)


def _reach_errors(user: User, actor: User, groups) -> dict[str, list]:
    errors: dict[str, list] = {}
    saved = User.objects.filter(pk=user.pk).first() if user.pk else None
    if user.is_superuser != (saved.is_superuser if saved else False) and not actor.is_superuser:
        errors["is_superuser"] = ["Only a superuser may make or unmake a superuser."]
    actor_branches = visible_branch_ids(actor)
    if actor_branches is None:
        return errors  # sees every branch: may give any place and any role
    roles = {group.name for group in groups} if groups is not None else set()
    if saved is not None:
        roles -= set(saved.groups.values_list("name", flat=True))
    if AUDITOR_GROUP in roles:
        errors["groups"] = ["Only a user who sees every branch may give the Auditor role."]
    if user.level == User.Level.HEAD_OFFICE:
        errors["level"] = ["Only a user who sees every branch may make a head-office user."]
    elif not home_branch_ids(user) <= actor_branches:
        field = HOME_FIELD_BY_LEVEL[user.level]
        errors[field] = [f"Choose a {user.level.lower()} among the branches you see."]
    return errors
