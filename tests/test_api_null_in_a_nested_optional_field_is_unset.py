"""null in an optional field is unset inside objects too, as at the top level: a function
without a description or parameters, ``stream_options.include_usage``, a history tool call's
``type``. Clients that serialize their models without dropping None send exactly these."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conversations.models import ModelConfig, User
from tests.test_api_support import bearer, chat, make_key, sse_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ASK = [{"role": "user", "content": "[[sim: say=ok]]"}]
CALLED = [
    {"role": "user", "content": "Look up OPS-17"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": None, "function": {"name": "lookup", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "in review"},
]


@pytest.mark.parametrize(
    "body",
    [
        {"tools": [{"type": "function", "function": {"name": "lookup", "description": None}}]},
        {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": None}}]},
        {"messages": CALLED},
    ],
    ids=["description", "parameters", "tool_call_type"],
)
def test_a_null_optional_field_is_accepted_as_unset(
    base: str, alice: User, chat_model: ModelConfig, body: dict[str, Any]
) -> None:
    response = chat(base, bearer(make_key(alice)), {"messages": ASK, **body})
    assert response.status_code == 200, response.text


def test_include_usage_null_streams_like_include_usage_false(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    options = {"messages": ASK, "stream": True, "stream_options": {"include_usage": None}}
    response = chat(base, bearer(make_key(alice)), options)
    assert response.status_code == 200, response.text
    data, _ = sse_events(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all("usage" not in chunk for chunk in chunks[:-1])
    assert chunks[-1]["usage"]["total_tokens"] > 0
