"""A browser that signed in to an account before has its tries at it counted apart from its
address's (``signin_device``). The cookie named the account and carried a fresh nonce each time,
each with its own five tries a window: whoever once knew the password could collect cookies
by signing in again and again, and after the password was changed each of them still gave five
guesses a window, unseen by the address's counts. It was good at any account whose name
differed only in case (Django's usernames are case-sensitive), so cookies minted at one's own
``alice`` gave tries without end at ``ALICE``; and it showed, to anyone who read the cookie
store of a shared computer, who signed in there last. Now the cookie holds no name, only a keyed
hash of the account and its current password, and a nonce of its own: each browser has its own
count (whoever holds one browser's cookie, say on a shared computer, cannot lock the owner out
of her others), a new password (changed or reset) ends every cookie of the account, and a
cookie tried at any other name, real or made up, or of an older form, is no cookie at all."""

from __future__ import annotations

import base64

import pytest
from django.core import signing
from django.test import Client

from conversations import signin
from conversations.models import User
from tests.support import PASSWORD, make_user

pytestmark = pytest.mark.django_db

OFFICE = "203.0.113.7"
NEW = "n3w-Passw0rd!x"


def sign_in(username: str, password: str, client: Client) -> str:
    response = client.post("/accounts/login/", {"username": username, "password": password})
    if response.status_code == 302:
        return "signed in"
    page = response.content.decode()
    if "Too many failed sign-ins" in page:
        return "refused"
    assert "Please enter a correct username and password" in page, page
    return "wrong"


def a_browser_she_signed_in_on(user: User, password: str = PASSWORD) -> Client:
    browser = Client(REMOTE_ADDR=OFFICE)
    assert sign_in(user.username, password, browser) == "signed in"
    assert browser.post("/accounts/logout/").status_code == 302
    assert signin.DEVICE_COOKIE in browser.cookies
    return browser


def wrong_answers_before_refusal(username: str, browsers: list[Client]) -> int:
    """Wrong guesses at ``username`` taken in turns from ``browsers`` until each is refused."""
    wrong = 0
    refused: set[int] = set()
    while len(refused) < len(browsers) and wrong < 100:
        for n, browser in enumerate(browsers):
            if n in refused:
                continue
            if sign_in(username, "guess", browser) == "refused":
                refused.add(n)
            else:
                wrong += 1
    return wrong


def test_one_browsers_cookie_used_up_leaves_her_other_browsers_in(alice: User) -> None:
    # She signed in once on the kiosk, and signed out; a colleague there guesses at her.
    kiosk = a_browser_she_signed_in_on(alice)
    laptop, phone = a_browser_she_signed_in_on(alice), a_browser_she_signed_in_on(alice)
    assert wrong_answers_before_refusal("alice", [kiosk]) == signin.PER_ACCOUNT
    assert sign_in("alice", PASSWORD, kiosk) == "refused"
    # Her own browsers still sign in, and a wrong answer there is one of their own five.
    assert sign_in("alice", "typo", phone) == "wrong"
    assert sign_in("alice", PASSWORD, laptop) == "signed in"
    assert sign_in("alice", PASSWORD, phone) == "signed in"
    # The address's own allowance for her is untouched by the kiosk's guesses.
    assert wrong_answers_before_refusal("alice", [Client(REMOTE_ADDR=OFFICE)]) == (
        signin.PER_ACCOUNT
    )


@pytest.mark.parametrize("form", ["a name and a nonce", "a tag alone"])
def test_a_cookie_of_an_older_form_is_no_cookie(alice: User, form: str) -> None:
    if form == "a name and a nonce":
        content: object = {"account": "alice", "nonce": "x"}
    else:
        content = signin._device_tag(alice)
    old = Client(REMOTE_ADDR=OFFICE)
    old.cookies[signin.DEVICE_COOKIE] = signing.dumps(content, salt=signin._DEVICE_SALT)
    for _ in range(signin.PER_ACCOUNT):
        assert sign_in("alice", "guess", Client(REMOTE_ADDR=OFFICE)) == "wrong"
    assert sign_in("alice", PASSWORD, old) == "refused"


@pytest.mark.parametrize("how", ["changed", "reset"])
def test_a_new_password_ends_every_cookie_of_the_account(alice: User, how: str) -> None:
    collected = [a_browser_she_signed_in_on(alice) for _ in range(3)]
    if how == "changed":
        tab = Client(REMOTE_ADDR="198.51.100.9")
        tab.force_login(alice)
        answer = tab.post(
            "/accounts/password/",
            {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW},
        )
        assert answer.status_code == 302
    else:  # as an admin sets it, or manage.py changepassword
        alice.set_password(NEW)
        alice.save()
    # The cookies count as no cookie: with them, and without, five guesses from the office.
    without = Client(REMOTE_ADDR=OFFICE)
    assert wrong_answers_before_refusal("alice", [*collected, without]) == signin.PER_ACCOUNT
    assert sign_in("alice", NEW, collected[0]) == "refused"
    assert sign_in("alice", NEW, Client(REMOTE_ADDR="198.51.100.10")) == "signed in"


def test_the_browser_that_changed_the_password_stays_known(alice: User) -> None:
    browser = Client(REMOTE_ADDR=OFFICE)
    assert sign_in("alice", PASSWORD, browser) == "signed in"
    answer = browser.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW},
    )
    assert answer.status_code == 302
    assert browser.post("/accounts/logout/").status_code == 302
    for _ in range(signin.PER_ACCOUNT):
        assert sign_in("alice", "guess", Client(REMOTE_ADDR=OFFICE)) == "wrong"
    assert sign_in("alice", NEW, browser) == "signed in"


def test_a_cookie_is_good_at_its_own_account_only(alice: User, bob: User) -> None:
    shouting = make_user("ALICE")
    mine = a_browser_she_signed_in_on(alice)
    for name in ("ALICE", "bob", "nobody"):
        for _ in range(signin.PER_ACCOUNT):
            assert sign_in(name, "guess", Client(REMOTE_ADDR=OFFICE)) == "wrong"
        # Her cookie at another name, real or made up, is no cookie: refused alike.
        assert sign_in(name, "guess", mine) == "refused"
    assert sign_in("ALICE", PASSWORD, Client(REMOTE_ADDR="198.51.100.9")) == "signed in"
    assert shouting.pk != alice.pk


def test_the_cookie_does_not_say_who_signed_in(alice: User) -> None:
    browser = a_browser_she_signed_in_on(alice)
    value = browser.cookies[signin.DEVICE_COOKIE].value
    payload = value.split(":")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
    assert "alice" not in decoded.casefold()
    assert "alice" not in value.casefold()
