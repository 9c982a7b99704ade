"""Everyone behind an office's NAT signs in from one address. Past that address's allowance of
failures (a guesser trying made-up names), sign-in from it was refused to everyone, right
password or not; and five wrong tries at a colleague's name locked her out of the office. Now
an account with no failure of its own is still checked past the address's allowance (an
account guessed at from there is refused: one try, not five), past the address's ceiling
every untrusted try is refused, and a browser that signed in to an account before has its own
count for it, which the address's guessers neither fill nor see."""

from __future__ import annotations

import pytest
from django.test import Client

from conversations import signin
from conversations.models import SignInFailures, User
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db

OFFICE = "203.0.113.7"


def sign_in(
    username: str, password: str, client: Client | None = None, path: str = "/accounts/login/"
) -> str:
    client = client or Client(REMOTE_ADDR=OFFICE)
    response = client.post(path, {"username": username, "password": password})
    if response.status_code == 302:
        return "signed in"
    page = response.content.decode()
    if "Too many failed sign-ins" in page:
        return "refused"
    assert "Please enter a correct username and password" in page, page
    return "wrong"


def sign_out(client: Client) -> None:
    """As the page's button does (Django's ``Client.logout`` drops every cookie)."""
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session


def guess_made_up_names(count: int) -> None:
    for n in range(count):
        assert sign_in(f"nobody{n}", "guess") == "wrong"


def test_past_the_addresss_allowance_an_account_not_guessed_at_signs_in(
    alice: User, bob: User, staff: User
) -> None:
    guess_made_up_names(signin.PER_ADDRESS + 2)
    assert sign_in("alice", PASSWORD) == "signed in"
    assert sign_in("sam", PASSWORD, path="/admin/login/") == "signed in"
    # An account (or a made-up name) first tried past the allowance has one try from there.
    assert sign_in("bob", "guess") == "wrong"
    assert sign_in("bob", PASSWORD) == "refused"
    assert sign_in("nobody-else", "guess") == "wrong"
    assert sign_in("nobody-else", "guess") == "refused"
    assert sign_in("bob", PASSWORD, Client(REMOTE_ADDR="198.51.100.9")) == "signed in"


def test_past_the_addresss_ceiling_only_a_known_browser_signs_in(alice: User, bob: User) -> None:
    alices_browser = Client(REMOTE_ADDR=OFFICE)
    assert sign_in("alice", PASSWORD, alices_browser) == "signed in"
    sign_out(alices_browser)
    guess_made_up_names(signin.PER_ADDRESS)
    # The last names tried before the ceiling (a test's 450 tries more, written as their sum).
    SignInFailures.objects.filter(pk__startswith="address:").update(failures=signin.ADDRESS_CEILING)
    assert sign_in("bob", PASSWORD) == "refused"
    assert sign_in("alice", PASSWORD) == "refused"  # another browser of hers
    assert sign_in("alice", PASSWORD, alices_browser) == "signed in"


def test_guesses_at_a_colleagues_name_leave_her_browser_in(alice: User) -> None:
    alices_browser = Client(REMOTE_ADDR=OFFICE)
    assert sign_in("alice", PASSWORD, alices_browser) == "signed in"
    sign_out(alices_browser)
    for _ in range(signin.PER_ACCOUNT):
        assert sign_in("alice", "guess") == "wrong"
    assert sign_in("alice", PASSWORD) == "refused"  # the guesser, right at last, or a new browser
    assert sign_in("alice", PASSWORD, alices_browser) == "signed in"
    sign_out(alices_browser)
    assert sign_in("alice", PASSWORD, path="/admin/login/") == "refused"

    # Her browser's own tries are bounded alike, and its cookie is for her account only.
    for _ in range(signin.PER_ACCOUNT):
        assert sign_in("alice", "guess", alices_browser) == "wrong"
    assert sign_in("alice", PASSWORD, alices_browser) == "refused"
    assert sign_in("bob", "guess", alices_browser) == "wrong"


def test_a_cookie_not_signed_by_the_site_is_no_browser_of_hers(alice: User) -> None:
    for _ in range(signin.PER_ACCOUNT):
        assert sign_in("alice", "guess") == "wrong"
    forged = Client(REMOTE_ADDR=OFFICE)
    forged.cookies[signin.DEVICE_COOKIE] = '{"account": "alice", "nonce": "x"}'
    assert sign_in("alice", PASSWORD, forged) == "refused"
