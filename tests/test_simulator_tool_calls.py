from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulator.testing import running_simulator, sse_chunks

AUTH = {"Authorization": "Bearer sk-alice"}
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_ticket",
        "description": "Fetch a ticket by key",
        "parameters": {
            "type": "object",
            "properties": {
                "key": {"type": "string"},
                "include_history": {"type": "boolean"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 50},
                "fields": {"type": "array", "items": {"enum": ["status", "owner"]}},
            },
            "required": ["key", "limit", "fields"],
            "additionalProperties": False,
        },
    },
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}
ASK = [{"role": "user", "content": "Use lookup_ticket to check OPS-17, limit 5 results"}]


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_simulator() as base:
        yield base


def post(url: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{url}/chat/completions", headers=AUTH, json={"model": "deepseek-flash", **body}
    )


def test_a_tool_call_turn_finishes_with_tool_calls_and_string_arguments(url: str) -> None:
    body = post(url, messages=ASK, tools=[LOOKUP]).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == ""
    assert choice["message"]["reasoning_content"]
    (call,) = choice["message"]["tool_calls"]
    assert list(call) == ["index", "id", "type", "function"]
    assert call["index"] == 0
    assert re.fullmatch(r"call_00_[A-Za-z0-9]{24}", call["id"])
    assert call["type"] == "function"
    assert call["function"]["name"] == "lookup_ticket"
    assert isinstance(call["function"]["arguments"], str)


def test_arguments_satisfy_the_schema_and_use_the_message(url: str) -> None:
    body = post(url, messages=ASK, tools=[LOOKUP], thinking={"type": "disabled"}).json()
    arguments = json.loads(body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
    assert set(arguments) <= {"key", "include_history", "limit", "fields"}
    assert arguments["key"] == "OPS-17"
    assert arguments["limit"] == 5
    assert isinstance(arguments["fields"], list) and arguments["fields"][0] in ("status", "owner")


def test_streamed_tool_call_fragments_follow_the_wire_rules(url: str) -> None:
    text = post(url, messages=ASK, tools=[LOOKUP], stream=True).text
    chunks = sse_chunks(text)
    fragments = [call for c in chunks for call in c["choices"][0]["delta"].get("tool_calls", [])]
    first, *rest = fragments
    assert first["index"] == 0
    assert re.fullmatch(r"call_00_[A-Za-z0-9]{24}", first["id"])
    assert first["type"] == "function"
    assert first["function"] == {"name": "lookup_ticket", "arguments": ""}
    assert rest and all(list(f) == ["index", "function"] for f in rest)
    assert all(list(f["function"]) == ["arguments"] for f in rest)
    json.loads("".join(f["function"]["arguments"] for f in rest))
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "tool_calls"
    assert last["delta"] == {"content": "", "reasoning_content": None}
    # Reasoning comes before the first tool-call fragment.
    kinds = [
        "tool"
        if c["choices"][0]["delta"].get("tool_calls")
        else "reasoning"
        if c["choices"][0]["delta"].get("reasoning_content")
        else "other"
        for c in chunks
    ]
    assert "reasoning" not in kinds[kinds.index("tool") :]


def test_two_mentioned_tools_are_called_in_parallel(url: str) -> None:
    messages = [{"role": "user", "content": "Call weather for 'Berlin' and lookup_ticket OPS-9"}]
    body = post(
        url, messages=messages, tools=[LOOKUP, WEATHER], thinking={"type": "disabled"}
    ).json()
    calls = body["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["weather", "lookup_ticket"]
    assert [c["index"] for c in calls] == [0, 1]
    assert calls[1]["id"].startswith("call_01_")
    assert json.loads(calls[0]["function"]["arguments"]) == {"location": "Berlin"}


def test_no_tool_is_called_when_the_message_does_not_ask_for_one(url: str) -> None:
    messages = [{"role": "user", "content": "Just say hello"}]
    body = post(url, messages=messages, tools=[LOOKUP]).json()
    assert body["choices"][0]["finish_reason"] == "stop"
    assert "tool_calls" not in body["choices"][0]["message"]


def test_tool_choice_none_suppresses_calls(url: str) -> None:
    body = post(url, messages=ASK, tools=[LOOKUP], tool_choice="none").json()
    assert "tool_calls" not in body["choices"][0]["message"]


def test_required_and_named_tool_choice_force_a_call_without_thinking(url: str) -> None:
    messages = [{"role": "user", "content": "hello"}]
    required = post(
        url,
        messages=messages,
        tools=[LOOKUP, WEATHER],
        tool_choice="required",
        thinking={"type": "disabled"},
    ).json()
    assert required["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "lookup_ticket"
    named = post(
        url,
        messages=messages,
        tools=[LOOKUP, WEATHER],
        tool_choice={"type": "function", "function": {"name": "weather"}},
        thinking={"type": "disabled"},
    ).json()
    assert named["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "weather"


def test_a_tool_result_gets_a_normal_answer_that_uses_it(url: str) -> None:
    first = post(url, messages=ASK, tools=[LOOKUP]).json()["choices"][0]["message"]
    messages = [
        *ASK,
        {
            "role": "assistant",
            "content": "",
            "reasoning_content": first["reasoning_content"],
            "tool_calls": first["tool_calls"],
        },
        {
            "role": "tool",
            "tool_call_id": first["tool_calls"][0]["id"],
            "content": json.dumps({"status": "in review", "owner": "mia"}),
        },
    ]
    body = post(url, messages=messages, tools=[LOOKUP]).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "tool_calls" not in choice["message"]
    assert "lookup_ticket" in choice["message"]["content"]
    assert '"in review"' in choice["message"]["content"]
    assert '"mia"' in choice["message"]["content"]


def test_a_forced_tool_choice_calls_again_after_tool_results(url: str) -> None:
    # As DeepSeek's: "required" (or a named function) means a call, tool results or not.
    messages = [{"role": "user", "content": "hello"}]
    forced = {"tools": [LOOKUP], "tool_choice": "required", "thinking": {"type": "disabled"}}
    first = post(url, messages=messages, **forced).json()["choices"][0]["message"]
    messages += [
        {"role": "assistant", "content": "", "tool_calls": first["tool_calls"]},
        {"role": "tool", "tool_call_id": first["tool_calls"][0]["id"], "content": "{}"},
    ]
    again = post(url, messages=messages, **forced).json()["choices"][0]
    assert again["finish_reason"] == "tool_calls"
    auto = post(url, messages=messages, **{**forced, "tool_choice": "auto"}).json()["choices"][0]
    assert auto["finish_reason"] == "stop" and "tool_calls" not in auto["message"]


def test_a_tool_message_must_answer_a_known_call(url: str) -> None:
    messages = [*ASK, {"role": "tool", "tool_call_id": "call_x", "content": "{}"}]
    response = post(url, messages=messages, tools=[LOOKUP])
    assert response.status_code == 400


CALL = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
CALL_2 = {**CALL, "id": "call_2"}


@pytest.mark.parametrize(
    ("history", "refusal"),
    [
        # A call left unanswered: by the next message, or at the end of the list.
        (
            [
                {"role": "assistant", "content": "", "tool_calls": [CALL]},
                {"role": "user", "content": "Never mind."},
            ],
            "must be followed by tool messages responding to each 'tool_call_id'",
        ),
        (
            [
                {"role": "assistant", "content": "", "tool_calls": [CALL, CALL_2]},
                {"role": "tool", "tool_call_id": "call_2", "content": "{}"},
            ],
            "must be followed by tool messages responding to each 'tool_call_id'",
        ),
        # An answer to a call of an earlier message, past another message.
        (
            [
                {"role": "assistant", "content": "", "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
                {"role": "user", "content": "And again?"},
                {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
            ],
            "must be a response to a preceding message with 'tool_calls'",
        ),
    ],
)
def test_tool_calls_and_their_answers_go_together(
    url: str, history: list[dict[str, Any]], refusal: str
) -> None:
    messages = [{"role": "user", "content": "Weather in Oslo?"}, *history]
    response = post(url, messages=messages, tools=[WEATHER])
    assert response.status_code == 400 and refusal in response.json()["error"]["message"]


def test_parallel_calls_answered_in_any_order_are_taken(url: str) -> None:
    messages = [
        {"role": "user", "content": "Weather in Oslo and Bergen?"},
        {"role": "assistant", "content": "", "reasoning_content": "", "tool_calls": [CALL, CALL_2]},
        {"role": "tool", "tool_call_id": "call_2", "content": "{}"},
        {"role": "tool", "tool_call_id": "call_1", "content": "{}"},
    ]
    assert post(url, messages=messages, tools=[WEATHER]).status_code == 200
