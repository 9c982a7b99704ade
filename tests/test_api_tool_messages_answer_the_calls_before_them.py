"""A tool message answers a tool call of the assistant message right before it, and every tool
call gets one: a history that breaks this is refused by us with a 400 naming the message, before
admission (DeepSeek refuses it too, but only after the call was admitted and its ledger row
written)."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key, settled_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
ASK = {"role": "user", "content": "Look up OPS-17 and OPS-18"}


def calling(*ids: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
            for i in ids
        ],
    }


def answer(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": "in review"}


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        # No assistant message with tool calls before it.
        ([ASK, answer("call_1")], "messages[1]: a tool message must follow"),
        # An id the assistant message before it did not call.
        ([ASK, calling("call_1"), answer("call_2")], "messages[2].tool_call_id 'call_2'"),
        # The id was called, but by an earlier assistant message, already answered.
        (
            [
                ASK,
                calling("call_1"),
                answer("call_1"),
                {"role": "user", "content": "And?"},
                answer("call_1"),
            ],
            "messages[4]: a tool message must follow",
        ),
        (
            [ASK, calling("call_1"), answer("call_1"), calling("call_2"), answer("call_1")],
            "messages[4].tool_call_id 'call_1'",
        ),
        # A call left unanswered: by the next message, or at the end of the list.
        (
            [ASK, calling("call_1", "call_2"), answer("call_1"), {"role": "user", "content": "?"}],
            "messages[1].tool_calls[1]: no tool message answers the tool call 'call_2'",
        ),
        ([ASK, calling("call_1")], "messages[1].tool_calls[0]"),
    ],
)
def test_a_tool_message_out_of_place_is_refused_before_admission(
    base: str, headers: dict[str, str], messages: list[dict[str, Any]], says: str
) -> None:
    for stream in (False, True):
        response = chat(base, headers, messages=messages, tools=TOOLS, stream=stream)
        error = assert_envelope(response, 400, "invalid_request_error")
        assert error["param"] == "messages"
        assert says in error["message"], error["message"]
    assert not UsageRecord.objects.exists()


def test_parallel_calls_answered_in_any_order_are_accepted(
    base: str, headers: dict[str, str]
) -> None:
    messages = [
        ASK,
        calling("call_1", "call_2"),
        answer("call_2"),
        answer("call_1"),
        {"role": "user", "content": "[[sim: say=Both in review.]]"},
        calling("call_3"),
        answer("call_3"),
    ]
    response = chat(base, headers, messages=messages, tools=TOOLS)
    assert response.status_code == 200, response.text
    assert settled_record().outcome == "complete"
