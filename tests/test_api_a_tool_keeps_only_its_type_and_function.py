"""A tool goes on as the reference spells it, ``{"type": "function", "function": {...}}``: a
field beside ``type`` and ``function`` (``cache_control``, or any other the upstream does not
read) is left out. It used to be passed on as sent, past the checks ``function.parameters``
gets, so one holding a number out of range (``1e400``, read as infinity) went upstream as
``Infinity``, which is not JSON, and a key saving history lost the call's copy (jsonb cannot
hold it either)."""

from __future__ import annotations

import httpx
import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import bearer, make_key, saved_conversation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

BODY = (
    '{"model": "deepseek-chat",'
    ' "messages": [{"role": "user", "content": "Look it up [[sim: say=Done.]]"}],'
    ' "tools": [{"type": "function", "function": {"name": "lookup"},'
    ' "cache_control": {"type": "ephemeral", "ttl": 1e400}}]}'
)


@pytest.mark.parametrize("stream", [False, True])
def test_a_field_beside_type_and_function_is_left_out(
    base: str, alice: User, chat_model: ModelConfig, stream: bool
) -> None:
    body = BODY[:-1] + (', "stream": true}' if stream else "}")
    response = httpx.post(
        base + "/v1/chat/completions",
        headers={**bearer(make_key(alice, save_history=True)), "Content-Type": "application/json"},
        content=body.encode(),
        timeout=30,
    )
    assert response.status_code == 200
    assert "Done." in response.text
    conversation = saved_conversation(alice)
    assert conversation.params["tools"] == [{"type": "function", "function": {"name": "lookup"}}]
