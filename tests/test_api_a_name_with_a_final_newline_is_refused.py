"""``user_id`` and function names must match ``[A-Za-z0-9_-]`` to their last character: one
ending in a newline is our 400 naming the parameter, before anything is sent upstream or
reserved (DeepSeek refuses it too, but as an upstream error naming nothing)."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

HISTORY = [
    {"role": "user", "content": "Look up OPS-17"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup\n", "arguments": "{}"},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "in review"},
]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"user_id": "team-42\n"}, "user_id"),
        ({"tools": [{"type": "function", "function": {"name": "lookup\n"}}]}, "tools"),
        ({"messages": HISTORY}, "messages"),
    ],
    ids=["user_id", "tools", "tool_calls"],
)
def test_a_name_ending_in_a_newline_is_refused_by_name(
    base: str, alice: User, chat_model: ModelConfig, body: dict[str, Any], param: str
) -> None:
    error = assert_envelope(chat(base, bearer(make_key(alice)), body), 400, "invalid_request_error")
    assert error["param"] == param, error
    assert not UsageRecord.objects.exists()
