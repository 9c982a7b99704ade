"""The conversation page tells the user what is left, and refuses sending when nothing is."""

from __future__ import annotations

import json
import re

import pytest

from conversations.models import Conversation, Policy, User, UserLimits
from tests.support import client_for, usage_account

pytestmark = pytest.mark.django_db


def page_data(html: str) -> dict[str, object]:
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    assert match
    result: dict[str, object] = json.loads(match.group(1))
    return result


def test_the_composer_is_disabled_with_a_reason_when_the_day_is_used_up(
    alice: User, alice_conversation: Conversation
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, tokens_per_day=1000)
    client = client_for(alice)
    assert page_data(client.get(f"/c/{alice_conversation.id}/").content.decode())["blocked"] == ""
    usage_account(alice, day_used=1000)
    data = page_data(client.get(f"/c/{alice_conversation.id}/").content.decode())
    assert "today's tokens" in str(data["blocked"])
    assert client.get(str(data["usage_url"])).json()["today"]["left"] == 0


def test_a_suspended_user_reads_but_cannot_send(
    alice: User, alice_conversation: Conversation
) -> None:
    UserLimits.objects.create(user=alice, suspended=True)
    data = page_data(client_for(alice).get(f"/c/{alice_conversation.id}/").content.decode())
    assert "suspended" in str(data["blocked"])
