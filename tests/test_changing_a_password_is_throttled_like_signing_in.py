"""Changing a password asks for the current one: whoever holds a session of the account (a tab
left signed in) could guess it there as often as they liked, while sign-in allows five tries,
and a right guess sets a new password, which ends the owner's sessions. Wrong current
passwords now count as failed sign-ins of the account from that address, on the site's page
and on the admin's, and past the allowance the page refuses as the sign-in page does."""

from __future__ import annotations

import pytest
from django.test import Client

from conversations import signin
from conversations.models import User
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db

NEW = "n3w-Passw0rd!x"


def signed_in(user: User, address: str = "203.0.113.7") -> Client:
    client = Client(REMOTE_ADDR=address)
    client.force_login(user)
    return client


def change(client: Client, old: str, path: str = "/accounts/password/") -> str:
    response = client.post(path, {"old_password": old, "new_password1": NEW, "new_password2": NEW})
    if response.status_code == 302:
        return "changed"
    return response.content.decode()


def sign_in(password: str, address: str = "203.0.113.7") -> str:
    response = Client(REMOTE_ADDR=address).post(
        "/accounts/login/", {"username": "alice", "password": password}
    )
    return "signed in" if response.status_code == 302 else response.content.decode()


def test_wrong_current_passwords_are_failed_sign_ins(alice: User) -> None:
    tab = signed_in(alice)
    for _ in range(signin.PER_ACCOUNT):
        assert "Your old password was entered incorrectly" in change(tab, "guess")
    page = change(tab, PASSWORD)  # the right one, too late
    assert "Too many failed sign-ins. Try again in 15 minutes." in page
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)
    # The same count as signing in: from there the account is refused sign-in too ...
    assert "Too many failed sign-ins" in sign_in(PASSWORD)
    # ... and its owner, elsewhere, changes it.
    assert change(signed_in(alice, "198.51.100.9"), PASSWORD) == "changed"


def test_a_right_current_password_clears_the_count(alice: User) -> None:
    tab = signed_in(alice)
    for _ in range(signin.PER_ACCOUNT - 1):
        change(tab, "guess")
    assert change(tab, PASSWORD) == "changed"
    assert sign_in("guess") != "signed in"
    assert sign_in(NEW) == "signed in"  # one failure since the change: far from the limit


def test_the_admin_s_password_page_counts_the_same(staff: User) -> None:
    desk = signed_in(staff)
    page = "/admin/password_change/"
    assert desk.get(page).status_code == 200
    for _ in range(signin.PER_ACCOUNT):
        assert "Your old password was entered incorrectly" in change(desk, "guess", page)
    assert "Too many failed sign-ins" in change(desk, PASSWORD, page)
    staff.refresh_from_db()
    assert staff.check_password(PASSWORD)

    elsewhere = signed_in(staff, "198.51.100.9")
    response = elsewhere.post(
        page, {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/password_change/done/"


def test_the_admin_s_password_page_is_for_staff_only(alice: User) -> None:
    response = signed_in(alice).get("/admin/password_change/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
