"""Staff who may delete groups but are not superusers cannot delete a group that carries
permissions, on its page nor in a batch ("delete selected"): its delete took those permissions
from every member, as taking each member out of it would, which only a superuser may do. A
clerk so stripped the rights of accounts whose own page was read-only to them. Groups that
carry only policies stay theirs to delete; a superuser deletes either.

Kim is such a clerk; Sam (``staff``) is a superuser."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from conversations.models import User
from tests.support import PASSWORD, client_for

pytestmark = pytest.mark.django_db

GRANTED = ["view_usagerecord", "view_auditentry", "change_policy"]


@pytest.fixture
def kim(db: None) -> User:
    clerk = User.objects.create_user("kim", password=PASSWORD, is_staff=True)
    clerk.user_permissions.set(
        Permission.objects.filter(codename__in=["view_group", "change_group", "delete_group"])
    )
    return clerk


@pytest.fixture
def auditors(alice: User) -> Group:
    group = Group.objects.create(name="auditors")
    group.permissions.set(Permission.objects.filter(codename__in=GRANTED))
    alice.groups.add(group)
    return group


def granted_to(user: User) -> set[str]:
    fresh = User.objects.get(pk=user.pk)  # permissions are cached on the instance
    return {codename for codename in GRANTED if fresh.has_perm(f"conversations.{codename}")}


def test_a_clerk_cannot_delete_a_group_that_carries_permissions(
    kim: User, alice: User, auditors: Group
) -> None:
    client = client_for(kim)
    page = f"/admin/auth/group/{auditors.pk}/delete/"
    assert client.get(page).status_code == 403
    assert client.post(page, {"post": "yes"}).status_code == 403
    batch = {"action": "delete_selected", "_selected_action": [str(auditors.pk)], "post": "yes"}
    assert client.post("/admin/auth/group/", batch).status_code == 403
    assert Group.objects.filter(pk=auditors.pk).exists()
    assert granted_to(alice) == set(GRANTED)


def test_a_clerk_still_deletes_a_group_that_carries_only_policies(kim: User, alice: User) -> None:
    readers = Group.objects.create(name="readers")
    alice.groups.add(readers)
    page = f"/admin/auth/group/{readers.pk}/delete/"
    assert client_for(kim).post(page, {"post": "yes"}).status_code == 302
    assert not Group.objects.filter(pk=readers.pk).exists()


def test_a_superuser_deletes_a_group_that_carries_permissions(
    staff: User, alice: User, auditors: Group
) -> None:
    page = f"/admin/auth/group/{auditors.pk}/delete/"
    assert client_for(staff).post(page, {"post": "yes"}).status_code == 302
    assert not Group.objects.filter(pk=auditors.pk).exists()
    assert granted_to(alice) == set()
