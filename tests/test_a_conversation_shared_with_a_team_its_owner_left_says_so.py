"""Alice shared a conversation with "ops", then left that team: its members still see it, and her
sharing page says so and asks for one of her teams, instead of showing the first of her teams
chosen, as if it were shared with that one."""

from __future__ import annotations

import html
import re

import pytest

from conversations.models import Conversation, Team, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def chosen_team(page: str) -> str:
    select = re.search(r'<select id="team"[^>]*>(.*?)</select>', page, re.S)
    assert select
    chosen = re.search(r"<option[^>]*selected[^>]*>([^<]*)</option>", select.group(1))
    return chosen.group(1) if chosen else ""


def test_the_sharing_page_names_the_team_left_and_asks_for_one(
    alice: User, bob: User, alice_conversation: Conversation
) -> None:
    ops, dev = Team.objects.create(name="ops"), Team.objects.create(name="dev")
    ops.members.set([alice, bob])
    dev.members.set([alice])
    Conversation.objects.filter(pk=alice_conversation.pk).update(visibility="team", team=ops)
    client = client_for(alice)
    path = f"/c/{alice_conversation.id}/sharing/"
    page = html.unescape(client.get(path).content.decode())
    assert chosen_team(page) == "ops"
    assert "no longer in" not in page

    ops.members.remove(alice)
    page = html.unescape(client.get(path).content.decode())
    assert (
        "Shared with the team “ops”, which you are no longer in: its members still see it. "
        "Choose one of your teams and save, or make it private." in page
    )
    assert chosen_team(page) == "Choose a team"
