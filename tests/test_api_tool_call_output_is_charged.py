"""A stream that ends early (the client hangs up, the upstream cuts it off) is charged for the
tool-call output the client received, like text: the estimate counts the calls' names and
arguments, not only the answer and the reasoning."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import bearer, make_key, sse_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "details": {"type": "string"}},
        },
    },
}
ASK = "The weather for the city of San Francisco in California, with all the details please"


def _body(directives: str) -> dict[str, Any]:
    return {
        "model": "deepseek-chat",
        "stream": True,
        "tools": [WEATHER],
        "messages": [{"role": "user", "content": f"{ASK} [[sim: tool=weather {directives}]]"}],
    }


def _arguments(line: str) -> str:
    """The tool-call argument text an SSE line carries."""
    if not line.startswith("data: {"):
        return ""
    delta = json.loads(line[6:])["choices"][0]["delta"]
    return "".join(call["function"].get("arguments", "") for call in delta.get("tool_calls") or [])


def _settled(user: User) -> UsageRecord:
    deadline = time.monotonic() + 15
    while True:
        record = UsageRecord.objects.get(user=user)
        if record.state == UsageRecord.State.SETTLED:
            return record
        assert time.monotonic() < deadline, "the call was never settled"
        time.sleep(0.1)


def test_hanging_up_during_a_tool_call_charges_the_arguments_received(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    received = ""
    with httpx.stream(
        "POST",
        base + "/v1/chat/completions",
        headers=bearer(make_key(alice)),
        json=_body("tokens_per_s=4"),
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            received += _arguments(line)
            if len(received) >= 12:
                break  # leaving the block closes the connection mid-call
    record = _settled(alice)
    assert record.outcome == "cancelled" and record.estimated
    assert record.completion_tokens > 0, "tool-call arguments received but not charged"
    assert record.reserved_tokens == 0


def test_a_tool_call_cut_off_upstream_charges_the_arguments_received(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    response = httpx.post(
        base + "/v1/chat/completions",
        headers=bearer(make_key(alice)),
        json=_body("drop_after=8"),
        timeout=30,
    )
    data, _ = sse_events(response.text)
    assert "error" in json.loads(data[-1])  # cut off: the error event, no [DONE]
    assert "".join(_arguments("data: " + d) for d in data[:-1])  # after some arguments
    record = _settled(alice)
    assert record.outcome == "interrupted" and record.estimated
    assert record.completion_tokens > 0, "tool-call arguments received but not charged"
