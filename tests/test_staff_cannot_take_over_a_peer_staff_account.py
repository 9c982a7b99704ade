"""Staff who manage accounts but are not superusers cannot set the password of another staff
account, even one holding no right they lack: a password they chose would let them sign in as
their peer and read the peer's private conversations. Nor can they change how that account
signs in (its username, email, whether it is active or staff: taking the staff flag off first
would make its password theirs to set). The peer's page shows the password's summary without
"Reset password", and the password page answers 403. Their own password they change where the
admin asks for the current one. Plain accounts' passwords stay theirs to set, and a superuser
sets anyone's.

Kim and Lee are clerks with the same permissions; Alice is a plain user; Sam (``staff``) is a
superuser."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from conversations.models import AuditEntry, User
from tests.support import PASSWORD, admin_form, client_for
from tests.test_staff_cannot_raise_their_own_rights import CLERK_PERMISSIONS

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a new 1 chosen by someone else"


def clerk(username: str) -> User:
    account = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    account.user_permissions.set(Permission.objects.filter(codename__in=CLERK_PERMISSIONS))
    return account


@pytest.fixture
def kim(db: None) -> User:
    return clerk("kim")


@pytest.fixture
def lee(db: None) -> User:
    return clerk("lee")


def page_of(user: User) -> str:
    return f"/admin/conversations/user/{user.pk}/change/"


def password_page_of(user: User) -> str:
    return f"/admin/conversations/user/{user.pk}/password/"


def set_password(client: Client, user: User) -> int:
    response = client.post(
        password_page_of(user),
        {"usable_password": "true", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    return response.status_code  # type: ignore[no-any-return]


def password_entries(user: User) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(target_type="user", target_id=str(user.pk), action="password")
    )


def test_a_clerk_cannot_reset_a_peer_staff_members_password(kim: User, lee: User) -> None:
    client = client_for(kim)
    page = client.get(page_of(lee)).content.decode()
    assert "../password/" not in page
    assert "Reset password" not in page
    assert client.get(password_page_of(lee)).status_code == 403
    assert set_password(client, lee) == 403
    lee.refresh_from_db()
    assert lee.check_password(PASSWORD)
    assert password_entries(lee) == []
    # Lee still signs in with their own password, and Kim not as Lee.
    assert Client().login(username="lee", password=PASSWORD)
    assert not Client().login(username="lee", password=NEW_PASSWORD)


def test_a_clerk_cannot_change_how_a_peer_staff_member_signs_in(kim: User, lee: User) -> None:
    client = client_for(kim)
    page = page_of(lee)
    shown = client.get(page).content.decode()
    for field in ("username", "email", "is_active", "is_staff"):
        assert f'name="{field}"' not in shown, field
    form = admin_form(
        client,
        page,
        username="kims-lee",
        email="kim@example.com",
        is_active=None,
        is_staff=None,
        first_name="Lee",
    )
    assert client.post(page, form).status_code == 302
    lee.refresh_from_db()
    assert (lee.username, lee.email, lee.is_active, lee.is_staff) == ("lee", "", True, True)
    assert lee.first_name == "Lee"  # a name is still the clerk's to correct
    # Not staff any more, Lee's password would have been Kim's to set.
    assert set_password(client, lee) == 403
    lee.refresh_from_db()
    assert lee.check_password(PASSWORD)


def test_a_clerk_still_resets_a_plain_users_password(kim: User, alice: User) -> None:
    client = client_for(kim)
    assert "../password/" in client.get(page_of(alice)).content.decode()
    assert client.get(password_page_of(alice)).status_code == 200
    assert set_password(client, alice) == 302
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    (entry,) = password_entries(alice)
    assert entry.actor == kim
    # And the plain account's sign-in is still the clerk's to manage.
    page = page_of(alice)
    assert client.post(page, admin_form(client, page, email="alice@example.com")).status_code == 302
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"


def test_a_clerk_changes_their_own_password_where_it_asks_for_the_current_one(
    kim: User,
) -> None:
    client = client_for(kim)
    page = client.get(page_of(kim)).content.decode()
    assert "../password/" not in page
    assert 'href="/admin/password_change/"' in page
    assert set_password(client, kim) == 403
    kim.refresh_from_db()
    assert kim.check_password(PASSWORD)
    response = client.post(
        "/admin/password_change/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    kim.refresh_from_db()
    assert kim.check_password(NEW_PASSWORD)


def test_a_superuser_resets_anyones_password(staff: User, kim: User, alice: User) -> None:
    client = client_for(staff)
    for account in (kim, alice):
        assert "../password/" in client.get(page_of(account)).content.decode()
        assert set_password(client, account) == 302
        account.refresh_from_db()
        assert account.check_password(NEW_PASSWORD)
        (entry,) = password_entries(account)
        assert entry.actor == staff
    page = page_of(kim)
    assert client.post(page, admin_form(client, page, username="kim2")).status_code == 302
    kim.refresh_from_db()
    assert kim.username == "kim2"


def test_a_clerk_cannot_delete_a_peer_staff_account(kim: User, lee: User, alice: User) -> None:
    """Deleting an account deletes its conversations: a peer's are not a clerk's to destroy.
    A plain account stays theirs to delete."""
    client = client_for(kim)
    assert (
        client.post(f"/admin/conversations/user/{lee.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    client.post(
        "/admin/conversations/user/",
        {"action": "delete_selected", "_selected_action": [str(lee.pk)], "post": "yes"},
    )
    assert User.objects.filter(pk=lee.pk).exists()
    response = client.post(f"/admin/conversations/user/{alice.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not User.objects.filter(pk=alice.pk).exists()
