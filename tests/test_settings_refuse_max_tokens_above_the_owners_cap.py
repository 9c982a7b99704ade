"""A conversation's settings refuse a ``max_tokens`` above its owner's own cap, naming the cap
on the field, and save nothing. Before, it was saved without a word, and every message after
it was refused ("max_tokens may be at most 2000 under your limits") until the owner went back
to Settings. The page's Settings say the cap ("up to 2000"). A cap lowered by the admin below
what a conversation's Settings hold refuses its messages saying so: the Settings' number, the
cap, and where to lower it (before: "max_tokens may be at most 1000 under your limits", a
parameter the chat's user never typed as such, and no word of the Settings)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, User, UserLimits
from conversations.ui_actions import settings_version
from tests.support import client_for, open_socket

pytestmark = pytest.mark.django_db


def save(alice: User, conversation: Conversation, params: dict[str, Any]) -> Any:
    return client_for(alice).post(
        f"/c/{conversation.id}/settings/",
        data=json.dumps(
            {
                "based_on": settings_version(Conversation.objects.get(pk=conversation.pk)),
                "model": "deepseek-chat",
                "system_prompt": "Be brief.",
                "params": params,
            }
        ),
        content_type="application/json",
    )


def test_max_tokens_above_the_owners_cap_is_refused_naming_it(
    alice: User, alice_conversation: Conversation
) -> None:
    UserLimits.objects.create(user=alice, max_output_tokens=2000)
    response = save(alice, alice_conversation, {"max_tokens": 5000})
    assert response.status_code == 400, response.content
    assert response.json()["errors"] == {
        "max_tokens": "max_tokens may be at most 2000 under your limits."
    }
    alice_conversation.refresh_from_db()
    assert alice_conversation.params == {} and alice_conversation.system_prompt == ""

    assert save(alice, alice_conversation, {"max_tokens": 2000}).status_code == 200
    alice_conversation.refresh_from_db()
    assert alice_conversation.params == {"max_tokens": 2000}


def test_the_page_gives_settings_the_cap(alice: User, alice_conversation: Conversation) -> None:
    UserLimits.objects.create(user=alice, max_output_tokens=2000)
    page = client_for(alice).get(f"/c/{alice_conversation.id}/").content.decode()
    assert '"max_tokens_cap": 2000' in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_cap_lowered_below_the_settings_says_so_on_send(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    alice_conversation.params = {"max_tokens": 4000}  # saved under the cap of the time
    await alice_conversation.asave(update_fields=["params"])
    await UserLimits.objects.acreate(user=alice, max_output_tokens=1000)  # lowered since
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "message.send", "client_id": "c1", "content": "hello"})
    error = await socket.until_type("error")
    assert (error["code"], error["param"], error["message"]) == (
        "invalid_parameter",
        "max_tokens",
        "This conversation's Max tokens (4,000, in its Settings) is more than your limits "
        "allow now (at most 1,000): lower it in Settings.",
    )
    # A number the message itself asks for is refused in admission's own words.
    await socket.send(
        {"type": "message.send", "client_id": "c2", "content": "hi", "params": {"max_tokens": 2000}}
    )
    error = await socket.until(lambda f: f["type"] == "error" and f.get("client_id") == "c2")
    assert error["message"] == "max_tokens may be at most 1000 under your limits."
    await socket.close()
    assert await sync_to_async(alice_conversation.messages.count)() == 0
