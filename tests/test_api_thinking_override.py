"""A request's ``thinking`` field chooses the mode the call runs in, and the thinking-mode rules
(§3.1: no tool_choice "required" or named function, no logprobs) follow that mode, not the
registry model's own: a request the upstream would refuse is refused by us, naming the
parameter, and one it would serve is served."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}
REQUIRED = {"tools": [WEATHER], "tool_choice": "required"}
NAMED = {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "weather"}}}
LOGPROBS = {"logprobs": True, "top_logprobs": 2}
ENABLED = {"thinking": {"type": "enabled"}}
DISABLED = {"thinking": {"type": "disabled"}}


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


@pytest.mark.parametrize(
    ("model", "body", "param"),
    [
        ("deepseek-chat", {**ENABLED, **REQUIRED}, "tool_choice"),
        ("deepseek-chat", {**ENABLED, **NAMED}, "tool_choice"),
        ("deepseek-chat", {**ENABLED, **LOGPROBS}, "logprobs"),
        ("deepseek-reasoner", REQUIRED, "tool_choice"),
        ("deepseek-reasoner", LOGPROBS, "logprobs"),
    ],
)
def test_thinking_mode_rules_refuse_a_call_that_runs_in_thinking_mode(
    base: str, headers: dict[str, str], alice: User, model: str, body: dict[str, Any], param: str
) -> None:
    response = chat(base, headers, {"model": model, **body})
    error = assert_envelope(response, 400, "invalid_request_error")
    assert error["param"] == param and "thinking mode" in error["message"]
    assert not UsageRecord.objects.filter(user=alice).exists()  # refused before the upstream


def test_a_reasoner_with_thinking_disabled_may_require_a_tool(
    base: str, headers: dict[str, str]
) -> None:
    response = chat(base, headers, {"model": "deepseek-reasoner", **DISABLED, **REQUIRED})
    assert response.status_code == 200, response.text
    message = response.json()["choices"][0]["message"]
    assert message["tool_calls"][0]["function"]["name"] == "weather"
    assert "reasoning_content" not in message  # it did run in non-thinking mode


def test_a_reasoner_with_thinking_disabled_returns_logprobs(
    base: str, headers: dict[str, str]
) -> None:
    response = chat(base, headers, {"model": "deepseek-reasoner", **DISABLED, **LOGPROBS})
    assert response.status_code == 200, response.text
    logprobs = response.json()["choices"][0]["logprobs"]
    assert logprobs["content"] and len(logprobs["content"][0]["top_logprobs"]) == 2


def test_a_chat_model_with_thinking_enabled_may_still_let_the_model_choose_a_tool(
    base: str, headers: dict[str, str]
) -> None:
    response = chat(base, headers, {**ENABLED, "tools": [WEATHER], "tool_choice": "auto"})
    assert response.status_code == 200, response.text
    assert "reasoning_content" in response.json()["choices"][0]["message"]
