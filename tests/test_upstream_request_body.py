"""The request body follows the registry entry and the pass-back rules of §3.3."""

from __future__ import annotations

import logging

import pytest

from conversations.upstream import ModelTarget, build_chat_request

HISTORY = [
    {"role": "system", "content": "You are the #ops channel helper."},
    {"role": "user", "content": "What's the status of OPS-17?"},
    {
        "role": "assistant",
        "content": None,
        "reasoning_content": "Need the ticket.",
        "tool_calls": [
            {
                "id": "call_00_x",
                "type": "function",
                "function": {"name": "lookup_ticket", "arguments": '{"key": "OPS-17"}'},
            }
        ],
        "db_id": 41,
    },
    {"role": "tool", "tool_call_id": "call_00_x", "content": '{"status": "in review"}'},
    {"role": "assistant", "content": "It is in review."},
    {"role": "user", "content": "Thanks. Who owns it?"},
]

REASONER = ModelTarget("deepseek-flash", thinking=True, reasoning_passback="send")
CHAT = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")
LEGACY_REASONER = ModelTarget("deepseek-reasoner", thinking=True, reasoning_passback="strip")


def test_a_thinking_model_gets_reasoning_back_on_every_assistant_message() -> None:
    body = build_chat_request(REASONER, HISTORY, stream=True)
    assert body["model"] == "deepseek-flash"
    assert body["thinking"] == {"type": "enabled"}
    assistants = [m for m in body["messages"] if m["role"] == "assistant"]
    assert [m["reasoning_content"] for m in assistants] == ["Need the ticket.", ""]


def test_a_tool_call_turn_without_content_sends_an_empty_string() -> None:
    body = build_chat_request(REASONER, HISTORY, stream=False)
    assert body["messages"][2]["content"] == ""
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "lookup_ticket"


def test_a_non_thinking_model_is_told_thinking_is_disabled() -> None:
    body = build_chat_request(CHAT, HISTORY, stream=False)
    assert body["thinking"] == {"type": "disabled"}


def test_the_legacy_reasoner_gets_no_reasoning_and_no_thinking_field() -> None:
    body = build_chat_request(LEGACY_REASONER, HISTORY, stream=True)
    assert body["model"] == "deepseek-reasoner"
    assert "thinking" not in body
    assert all("reasoning_content" not in m for m in body["messages"])


def test_undocumented_message_fields_are_dropped() -> None:
    body = build_chat_request(REASONER, HISTORY, stream=True)
    assert "db_id" not in body["messages"][2]
    assert HISTORY[2]["db_id"] == 41  # the caller's history is not modified
    assert HISTORY[2]["content"] is None


def test_streams_always_ask_for_usage() -> None:
    streamed = build_chat_request(CHAT, HISTORY, stream=True)
    assert streamed["stream"] is True
    assert streamed["stream_options"] == {"include_usage": True}
    plain = build_chat_request(CHAT, HISTORY, stream=False)
    assert plain["stream"] is False
    assert "stream_options" not in plain


def test_only_documented_parameters_are_forwarded(caplog: pytest.LogCaptureFixture) -> None:
    params = {
        "temperature": 1.3,
        "max_tokens": 512,
        "top_p": None,
        "response_format": {"type": "json_object"},
        "user_id": "team-member-0042",
        "seed": 7,
        "n": 2,
        "stream": False,
        "model": "evil",
    }
    with caplog.at_level(logging.WARNING, logger="conversations.upstream"):
        body = build_chat_request(CHAT, HISTORY, params, stream=True)
    assert body["temperature"] == 1.3
    assert body["max_tokens"] == 512
    assert body["response_format"] == {"type": "json_object"}
    assert body["user_id"] == "team-member-0042"
    assert "top_p" not in body
    assert "seed" not in body and "n" not in body
    assert body["model"] == "deepseek-flash"
    assert body["stream"] is True
    assert "n, seed" in caplog.text
