"""A named ``tool_choice`` is passed on as the reference spells it, its function's name and
nothing else. Other fields in it used to be passed on as given: a number out of range went
upstream as ``Infinity`` (not JSON), and a saving key's copy of the call was silently lost,
since the conversation's parameters could not be stored (jsonb holds neither that number nor
a NUL)."""

from __future__ import annotations

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import bearer, make_key, saved_conversation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

TOOLS = (
    '[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", '
    '"properties": {"key": {"type": "string"}}, "required": ["key"]}}}]'
)


@pytest.mark.parametrize("extra", ['"weight": 1e999', '"note": "a\\u0000b"'])
def test_a_saved_call_keeps_the_named_tool_choice_without_its_other_fields(
    base: str, alice: User, chat_model: ModelConfig, extra: str
) -> None:
    body = (
        '{"model": "deepseek-chat", "messages": [{"role": "user", "content": "Look up OPS-17."}], '
        f'"tools": {TOOLS}, '
        f'"tool_choice": {{"type": "function", "function": {{"name": "lookup", {extra}}}}}}}'
    )
    response = httpx.post(
        base + "/v1/chat/completions",
        headers={**bearer(make_key(alice, save_history=True)), "Content-Type": "application/json"},
        content=body.encode(),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    [call] = response.json()["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "lookup"
    conversation = saved_conversation(alice)
    assert conversation.params["tool_choice"] == {
        "type": "function",
        "function": {"name": "lookup"},
    }
    assert UsageRecord.objects.get().conversation == conversation
