from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulator.testing import running_simulator

AUTH = {"Authorization": "Bearer sk-alice"}
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_ticket",
        "parameters": {"type": "object", "properties": {"key": {"type": "string"}}},
    },
}
CALL = {
    "id": "call_00_x7Qp2LmZ0aBcDeFgHiJk0001",
    "type": "function",
    "function": {"name": "lookup_ticket", "arguments": '{"key": "OPS-17"}'},
}


def history(**assistant_extra: Any) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "What's the status of OPS-17?"},
        {"role": "assistant", "content": "", "tool_calls": [CALL], **assistant_extra},
        {"role": "tool", "tool_call_id": CALL["id"], "content": '{"status": "done"}'},
    ]


@pytest.fixture(scope="module")
def current() -> Iterator[str]:
    with running_simulator(profile="current-2026") as url:
        yield url


def post(url: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/chat/completions", headers=AUTH, json=body)


def test_sampling_parameters_are_accepted_in_thinking_mode(current: str) -> None:
    response = post(
        current,
        model="deepseek-flash",
        messages=[{"role": "user", "content": "hi"}],
        temperature=1.3,
        top_p=0.9,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
    )
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["reasoning_content"]


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "lookup_ticket"}}]
)
def test_thinking_rejects_required_and_named_tool_choice(current: str, choice: Any) -> None:
    response = post(
        current,
        model="deepseek-flash",
        messages=[{"role": "user", "content": "hi"}],
        tools=[TOOL],
        tool_choice=choice,
    )
    assert response.status_code == 400
    assert "tool_choice" in response.json()["error"]["message"]


def test_a_tool_call_turn_without_reasoning_content_is_a_400(current: str) -> None:
    response = post(current, model="deepseek-flash", messages=history(), tools=[TOOL])
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "The `reasoning_content` in the thinking mode must be passed back to the API."
    )


def test_the_same_history_with_empty_reasoning_content_succeeds(current: str) -> None:
    response = post(
        current, model="deepseek-flash", messages=history(reasoning_content=""), tools=[TOOL]
    )
    assert response.status_code == 200


def test_passback_is_not_needed_with_thinking_disabled(current: str) -> None:
    response = post(
        current,
        model="deepseek-flash",
        thinking={"type": "disabled"},
        messages=history(),
        tools=[TOOL],
    )
    assert response.status_code == 200
    assert "reasoning_content" not in response.json()["choices"][0]["message"]


def test_legacy_reasoner_rejects_any_input_reasoning_content() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "reasoning_content": "greet back"},
        {"role": "user", "content": "how are you?"},
    ]
    with running_simulator(profile="legacy-2025") as url:
        rejected = post(url, model="deepseek-reasoner", messages=messages)
        chat = post(url, model="deepseek-chat", messages=messages)
    assert rejected.status_code == 400
    assert "reasoning_content" in rejected.json()["error"]["message"]
    assert chat.status_code == 200


def test_legacy_reasoner_with_ignore_policy_accepts_reasoning_content() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "reasoning_content": "greet back"},
        {"role": "user", "content": "how are you?"},
    ]
    with running_simulator(profile="legacy-2025", reasoner_input_policy="ignore") as url:
        response = post(url, model="deepseek-reasoner", messages=messages)
    assert response.status_code == 200


def test_legacy_reasoner_rejects_successive_user_messages_and_a_trailing_assistant() -> None:
    with running_simulator(profile="legacy-2025") as url:
        successive = post(
            url,
            model="deepseek-reasoner",
            messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        )
        trailing = post(
            url,
            model="deepseek-reasoner",
            messages=[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
        )
    assert successive.status_code == 400
    assert successive.json()["error"]["message"].startswith(
        "deepseek-reasoner does not support successive user or assistant messages"
    )
    assert trailing.status_code == 400
    assert trailing.json()["error"]["message"].startswith(
        "The last message of deepseek-reasoner must be a user message"
    )
