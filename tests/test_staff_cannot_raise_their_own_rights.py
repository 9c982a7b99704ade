"""Staff who manage accounts (the "change user" permission) but are not superusers cannot raise
anyone's rights, their own included: superuser status and permissions are read-only to them,
a group that carries permissions is not theirs to add an account to (or take it out of), a
group's permissions are not theirs to change, and an account holding a right they lack — a
superuser's above all — is not theirs to edit, deactivate, give a password or delete. Each of
those was open to them: ticking "superuser" on their own account made them one. What they
manage day to day (limits, suspensions, groups that carry only policies) stays theirs, audited.

Kim is such a clerk; Sam (``staff``) is a superuser."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client

from conversations.models import AuditEntry, Policy, User
from tests.support import PASSWORD, admin_form, client_for
from tests.test_audit_of_new_accounts_limits_and_passwords import limits_form

pytestmark = pytest.mark.django_db

#: What a clerk who manages accounts and their limits holds.
CLERK_PERMISSIONS = [
    "view_user",
    "change_user",
    "delete_user",
    "view_userlimits",
    "add_userlimits",
    "change_userlimits",
    "view_group",
    "add_group",
    "change_group",
]


@pytest.fixture
def kim(db: None) -> User:
    clerk = User.objects.create_user("kim", password=PASSWORD, is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename__in=CLERK_PERMISSIONS))
    return clerk


def page_of(user: User) -> str:
    return f"/admin/conversations/user/{user.pk}/change/"


def entries_of(user: User) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(target_type="user", target_id=str(user.pk)))


def save(client: Client, user: User, **changes: object) -> object:
    page = page_of(user)
    return client.post(page, admin_form(client, page, **changes))


@pytest.mark.parametrize("whose", ["their own", "another's"])
def test_a_clerk_cannot_make_an_account_a_superuser(kim: User, alice: User, whose: str) -> None:
    account = kim if whose == "their own" else alice
    client = client_for(kim)
    assert 'name="is_superuser"' not in client.get(page_of(account)).content.decode()
    response = save(client, account, is_superuser="on")
    assert response.status_code == 302  # type: ignore[attr-defined]
    account.refresh_from_db()
    assert not account.is_superuser
    assert entries_of(account) == []


def test_a_clerk_cannot_grant_permissions(kim: User, alice: User) -> None:
    everything = [str(pk) for pk in Permission.objects.values_list("pk", flat=True)]
    client = client_for(kim)
    assert 'name="user_permissions"' not in client.get(page_of(kim)).content.decode()
    for account in (kim, alice):
        save(client, account, user_permissions=everything)
    assert not alice.user_permissions.exists()
    assert set(kim.user_permissions.values_list("codename", flat=True)) == set(CLERK_PERMISSIONS)
    assert not kim.has_perm("conversations.add_user")


def test_a_clerk_cannot_join_a_group_that_carries_permissions(kim: User, alice: User) -> None:
    admins = Group.objects.create(name="admins")
    admins.permissions.set(Permission.objects.all())
    client = client_for(kim)
    for account in (kim, alice):
        response = save(client, account, groups=[str(admins.pk)])
        assert response.status_code == 200  # type: ignore[attr-defined]
        errors = response.context["adminform"].form.errors  # type: ignore[attr-defined]
        assert errors["groups"] == [
            "Only a superuser can add an account to, or take it out of, a group that carries "
            "permissions: “admins”. Groups that carry only policies are yours to change."
        ]
        assert not account.groups.exists()
        assert entries_of(account) == []


def test_a_clerk_cannot_give_a_group_permissions(kim: User) -> None:
    clerks = Group.objects.create(name="clerks")
    kim.groups.add(clerks)
    client = client_for(kim)
    page = f"/admin/auth/group/{clerks.pk}/change/"
    assert 'name="permissions"' not in client.get(page).content.decode()
    everything = [str(pk) for pk in Permission.objects.values_list("pk", flat=True)]
    assert client.post(page, {"name": "clerks", "permissions": everything}).status_code == 302
    assert not clerks.permissions.exists()
    response = client.post("/admin/auth/group/add/", {"name": "mine", "permissions": everything})
    assert response.status_code == 302
    assert not Group.objects.get(name="mine").permissions.exists()
    kim = User.objects.get(pk=kim.pk)  # permissions are cached on the instance
    assert not kim.has_perm("conversations.add_user")


def test_a_clerk_cannot_change_a_superuser(kim: User, staff: User) -> None:
    client = client_for(kim)
    page = page_of(staff)
    shown = client.get(page)
    assert shown.status_code == 200  # read-only: no form to save
    assert 'name="_save"' not in shown.content.decode()
    form = admin_form(client, page, is_active=None, username="sam2")
    assert client.post(page, form).status_code == 403
    password_page = f"/admin/conversations/user/{staff.pk}/password/"
    assert client.get(password_page).status_code == 403
    response = client.post(
        password_page,
        {"usable_password": "true", "password1": "a new 1 for sam", "password2": "a new 1 for sam"},
    )
    assert response.status_code == 403
    delete_page = f"/admin/conversations/user/{staff.pk}/delete/"
    assert client.post(delete_page, {"post": "yes"}).status_code == 403
    client.post(
        "/admin/conversations/user/",
        {"action": "delete_selected", "_selected_action": [str(staff.pk)], "post": "yes"},
    )
    staff.refresh_from_db()
    assert (staff.username, staff.is_active, staff.is_superuser) == ("sam", True, True)
    assert staff.check_password(PASSWORD)
    assert entries_of(staff) == []


def test_a_clerk_cannot_take_over_an_account_with_rights_it_lacks(kim: User, bob: User) -> None:
    """Setting its password would lend the clerk its rights."""
    bob.is_staff = True
    bob.save()
    bob.user_permissions.set(Permission.objects.filter(codename="change_policy"))
    client = client_for(kim)
    password_page = f"/admin/conversations/user/{bob.pk}/password/"
    response = client.post(
        password_page,
        {"usable_password": "true", "password1": "a new 1 for bob", "password2": "a new 1 for bob"},
    )
    assert response.status_code == 403
    bob.refresh_from_db()
    assert bob.check_password(PASSWORD)


def test_a_clerk_still_manages_groups_limits_and_suspensions_audited(
    kim: User, alice: User, bob: User
) -> None:
    engineers = Group.objects.create(name="engineers")
    Policy.objects.create(name="engineering", tokens_per_day=10**9).groups.add(engineers)
    client = client_for(kim)
    assert save(client, alice, groups=[str(engineers.pk)]).status_code == 302  # type: ignore[attr-defined]
    (entry,) = entries_of(alice)
    assert (entry.action, entry.actor) == ("change", kim)
    assert entry.after["group_policies"] == ["engineering"]

    response = client.post(page_of(bob), limits_form(client, bob, suspended="on"))
    assert response.status_code == 302
    (entry,) = AuditEntry.objects.filter(target_type="userlimits")
    assert (entry.action, entry.actor) == ("suspend", kim)

    # A peer with no right Kim lacks: deactivated, and audited.
    assert save(client, bob, is_active=None).status_code == 302  # type: ignore[attr-defined]
    bob.refresh_from_db()
    assert not bob.is_active
    assert entries_of(bob)[-1].after["is_active"] is False


def test_a_superuser_still_grants_rights(staff: User, kim: User) -> None:
    admins = Group.objects.create(name="admins")
    admins.permissions.set(Permission.objects.filter(codename="add_user"))
    client = client_for(staff)
    response = save(client, kim, is_superuser="on", groups=[str(admins.pk)])
    assert response.status_code == 302  # type: ignore[attr-defined]
    kim.refresh_from_db()
    assert kim.is_superuser and list(kim.groups.all()) == [admins]
    (entry,) = entries_of(kim)
    assert (entry.before["is_superuser"], entry.after["is_superuser"]) == (False, True)
