"""Who may change whose rights in the admin: rights only ever flow down from a superuser.

Django's admin lets staff with the "change user" permission edit every field of every
account: tick "superuser" on their own, grant themselves any permission, join a group that
carries permissions, or deactivate a superuser, or set its password and sign in as it. A
staff member could so raise their own rights to everything. Here only superusers grant
rights (superuser status, permissions, membership of a group that carries permissions, a
group's permissions, the delete of a group that carries them), and staff change only the accounts that hold no right they lack
themselves (never a superuser's). How another staff account signs in (its password, its
username and email, whether it is active or staff) and its deletion are a superuser's alone: a peer
holding no more rights than the clerk is still someone else, whose private conversations a
password set for it would open (:func:`may_change_sign_in`). What staff manage day to day (names, limits, suspensions,
policies, groups that carry only policies) is theirs to change as before.

A right is counted whether or not its account is active: an inactive account's permissions
come back with it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

from conversations.models import User


def grants_rights(actor: User) -> bool:
    """Whether ``actor`` may grant rights: superuser status, permissions, membership of a
    group that carries permissions, a group's permissions."""
    return actor.is_active and actor.is_superuser


def permissions_held(user: User) -> set[int]:
    """The ids of every permission ``user`` holds, their own and their groups'."""
    return set(
        Permission.objects.filter(Q(user=user) | Q(group__user=user))
        .values_list("pk", flat=True)
        .distinct()
    )


def may_change_account(actor: User, account: User) -> bool:
    """Whether ``actor`` may change (edit, deactivate, set the password of, delete) ``account``:
    a superuser may change any; anyone else, no superuser, and only an account whose every
    permission they hold too (setting its password would otherwise lend them its rights)."""
    if grants_rights(actor):
        return True
    if account.is_superuser:
        return False
    return permissions_held(account) <= permissions_held(actor)


#: The fields of an account that say who signs in as it, beside its password: taking the
#: staff flag off a peer would make its password settable, and deactivating it locks it out.
SIGN_IN_FIELDS = ("username", "email", "is_active", "is_staff")


def may_change_sign_in(actor: User, account: User) -> bool:
    """Whether ``actor`` may set the password of ``account`` in the admin, or change its
    :data:`SIGN_IN_FIELDS`: a superuser any account's; anyone else only an account that is not
    staff (a staff account is someone's way into the admin, and a peer's password would lend
    its private conversations) and that they may change at all (:func:`may_change_account`).
    Their own password staff change where it asks for the current one (the admin's "Change
    password"), not on their account's page, which sets one without it."""
    if grants_rights(actor):
        return True
    if account.is_staff or account.is_superuser:
        return False
    return may_change_account(actor, account)


def groups_with_permissions(groups: Iterable[Group]) -> list[Group]:
    """Of ``groups``, those that carry permissions (joining one grants them), by name."""
    ids = [group.pk for group in groups]
    return list(
        Group.objects.filter(pk__in=ids, permissions__isnull=False).distinct().order_by("name")
    )
