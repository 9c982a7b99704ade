"""The limits that count a client's address (sign-in throttling, the share links' requests a
minute, the anonymous sockets' places) count an IPv6 client by its /64 network. A host is
given a whole /64 and picks new addresses in it at will (privacy extensions do so by design),
so counted one address at a time a guesser changed address with every try and was never
throttled. An IPv4 client reaching an IPv6 socket (``::ffff:203.0.113.7``) is its IPv4
address."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from chatsite.addresses import counted_as
from conversations import sharing, signin
from conversations.models import Conversation, Message, SharingSettings, User
from tests.support import PASSWORD

pytestmark = pytest.mark.django_db


def sign_in(password: str, address: str) -> str:
    response = Client(REMOTE_ADDR=address).post(
        "/accounts/login/", {"username": "alice", "password": password}
    )
    return "signed in" if response.status_code == 302 else response.content.decode()


def test_what_an_address_is_counted_as() -> None:
    assert counted_as("2001:db8:1:2:a:b:c:d") == "2001:db8:1:2::/64"
    assert counted_as("2001:DB8:1:2::1") == "2001:db8:1:2::/64"
    assert counted_as("::ffff:203.0.113.7") == "203.0.113.7"
    assert counted_as("203.0.113.7") == "203.0.113.7"
    assert counted_as("unknown") == "unknown"


def test_guesses_from_new_addresses_of_one_64_are_throttled(alice: User) -> None:
    for n in range(signin.PER_ACCOUNT):
        page = sign_in("wrong", f"2001:db8:1:2::{n + 1:x}")
        assert "Please enter a correct username and password" in page
    assert "Too many failed sign-ins" in sign_in(PASSWORD, "2001:db8:1:2:ffff:1:2:3")
    assert sign_in(PASSWORD, "2001:db8:1:3::1") == "signed in"  # another network


def test_an_ipv4_mapped_address_is_its_ipv4_address(alice: User) -> None:
    for _ in range(signin.PER_ACCOUNT):
        sign_in("wrong", "::ffff:203.0.113.7")
    assert "Too many failed sign-ins" in sign_in(PASSWORD, "203.0.113.7")


def test_one_64_shares_its_share_link_requests(
    alice: User, alice_conversation: Conversation, settings: Any
) -> None:
    settings.ANONYMOUS_LINK_REQUESTS_PER_MINUTE = 3
    SharingSettings.objects.update_or_create(pk=1, defaults={"allow_public_links": True})
    Message.objects.create(
        conversation=alice_conversation, role="user", author=alice, content="Where is the runbook?"
    )
    _, token = sharing.create_share_link(alice, alice_conversation.id)
    with connection.cursor() as cursor:  # the requests below all fall in one clock minute
        cursor.execute("SELECT 60 - mod(extract(epoch FROM now()), 60)")
        left = float(cursor.fetchone()[0])
    if left < 10:
        time.sleep(left + 0.2)

    def get(address: str) -> int:
        path = f"/s/{token}/messages.json"
        return int(Client(REMOTE_ADDR=address).get(path).status_code)

    assert [get(f"2001:db8:5:6::{n + 1:x}") for n in range(3)] == [200, 200, 200]
    assert get("2001:db8:5:6:1234:5678:9abc:def0") == 429
    assert get("2001:db8:5:7::1") == 200
