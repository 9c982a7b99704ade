"""An account holds at most ``api_keys.MAX_LIVE_KEYS`` live API keys, and its keys page lists
those and the ``ENDED_KEYS_SHOWN`` that ended last. There was no cap: one account could make
keys without end (one POST each), and every load of its keys page listed them all."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from conversations import api_keys
from conversations.models import ApiKey, User
from tests.support import client_for

pytestmark = pytest.mark.django_db

PAGE = "/settings/api-keys/"


def test_the_fifty_first_live_key_is_refused_until_one_is_revoked(alice: User) -> None:
    client = client_for(alice)
    for number in range(api_keys.MAX_LIVE_KEYS):
        assert client.post(PAGE, {"name": f"key {number}"}).status_code == 201
    refused = client.post(PAGE, {"name": "one too many"})
    assert refused.status_code == 400
    assert "You have 50 live keys" in refused.content.decode()
    assert not ApiKey.objects.filter(name="one too many").exists()
    with pytest.raises(CommandError, match="50 live keys"):
        call_command("create_api_key", "alice", stdout=io.StringIO())

    oldest = ApiKey.objects.filter(user=alice).order_by("created_at").first()
    assert oldest is not None
    api_keys.revoke_key(oldest, alice)
    assert client.post(PAGE, {"name": "in its place"}).status_code == 201


def test_the_page_lists_every_live_key_and_the_last_ended_ones(alice: User) -> None:
    live = api_keys.create_key(alice, name="the live one").key
    for number in range(api_keys.ENDED_KEYS_SHOWN + 5):
        api_keys.revoke_key(api_keys.create_key(alice, name=f"ended {number}").key, alice)
    shown = [key.name for key in api_keys.keys_of(alice)]
    # The live key first although 25 keys are newer; then the 20 newest of those that ended.
    assert shown[0] == live.name
    assert shown[1:] == [f"ended {n}" for n in range(24, 4, -1)]
    page = client_for(alice).get(PAGE).content.decode()
    assert "the live one" in page and "ended 24" in page and "ended 4<" not in page
