"""Guessing a password is slowed down: after 5 failed sign-ins of one account from one
address in 15 minutes, sign-in from there is refused, saying for how long, even with the
right password; the account signs in from another address, and a success clears the count.
The admin's sign-in page counts the same way. There was no limit at all."""

from __future__ import annotations

import pytest
from django.test import Client

from conversations import signin
from conversations.models import SignInFailures, User
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in(password: str, address: str = "203.0.113.7", path: str = "/accounts/login/") -> str:
    client = Client(REMOTE_ADDR=address)
    response = client.post(path, {"username": "alice", "password": password})
    if response.status_code == 302:
        return "signed in"
    return response.content.decode()


def test_five_failures_lock_the_account_from_that_address_only(alice: User) -> None:
    assert sign_in(PASSWORD) == "signed in"
    for _ in range(signin.PER_ACCOUNT):
        page = sign_in("wrong")
        assert "Please enter a correct username and password" in page
    page = sign_in(PASSWORD)  # the right one, too late
    assert "Too many failed sign-ins. Try again in 15 minutes." in page
    assert "Too many failed sign-ins" in sign_in(PASSWORD, path="/admin/login/")

    assert sign_in(PASSWORD, address="198.51.100.9") == "signed in"  # the owner, elsewhere

    # The window over, the count starts again; a success clears it.
    SignInFailures.objects.update(
        window_start=SignInFailures.objects.get(pk__startswith="account:").window_start
        - signin.WINDOW
    )
    assert sign_in(PASSWORD) == "signed in"
    assert not SignInFailures.objects.filter(pk__startswith="account:").exists()


def test_one_address_guessing_many_accounts_is_stopped(alice: User) -> None:
    """Past the address's allowance, an account guessed at from there is refused (the rule in
    full: test_one_guesser_behind_an_address_locks_no_one_else_out)."""
    for n in range(signin.PER_ADDRESS):
        Client(REMOTE_ADDR="192.0.2.1").post(
            "/admin/login/", {"username": f"user{n}", "password": "guess"}
        )
    assert "Please enter a correct username" in sign_in("guess", address="192.0.2.1")
    assert "Too many failed sign-ins" in sign_in(PASSWORD, address="192.0.2.1")
    assert sign_in(PASSWORD, address="192.0.2.2") == "signed in"
