"""A number in a tool's schema too large for a float (1e400 parses as infinity) is refused
naming tools, on every path: saving the settings was a 500 (jsonb cannot hold infinity), a sent
message an internal error, and the API passed it upstream as a body it cannot parse."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User
from conversations.ui_actions import settings_version
from tests.support import client_for, open_socket
from tests.test_api_support import assert_envelope, bearer, make_key

TOOLS = (
    '[{"type": "function", "function": {"name": "lookup", '
    '"parameters": {"type": "object", "maximum": 1e400}}}]'
)


@pytest.mark.django_db
def test_the_settings_refuse_it(alice: User, alice_conversation: Conversation) -> None:
    based_on = settings_version(alice_conversation)
    body = (
        f'{{"based_on": "{based_on}", "model": "deepseek-chat", "system_prompt": "", '
        f'"params": {{"tools": {TOOLS}}}}}'
    )
    response = client_for(alice).post(
        f"/c/{alice_conversation.id}/settings/", data=body, content_type="application/json"
    )
    assert response.status_code == 400
    assert "out of range" in response.json()["errors"]["tools"]
    alice_conversation.refresh_from_db()
    assert alice_conversation.params == {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_frame_is_refused_naming_tools(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send_raw(
        '{"type": "message.send", "client_id": "x", "content": "hi", "params": {"tools": '
        + TOOLS
        + "}}"
    )
    error = await socket.until_type("error")
    assert error["code"] == "invalid_parameter" and error["param"] == "tools", error
    await socket.close()
    assert not await Message.objects.filter(conversation=alice_conversation).aexists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_the_api_refuses_it(base: str, alice: User, chat_model: ModelConfig) -> None:
    body = (
        '{"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}], "tools": '
        + TOOLS
        + "}"
    )
    response = httpx.post(
        base + "/v1/chat/completions", headers=bearer(make_key(alice)), content=body, timeout=30
    )
    error = assert_envelope(response, 400, "invalid_request_error")
    assert error["param"] == "tools" and "out of range" in error["message"]
    assert not UsageRecord.objects.exists()
