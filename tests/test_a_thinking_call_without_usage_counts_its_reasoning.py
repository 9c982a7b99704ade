"""A call the provider sent no usage for is charged an estimate, flagged as such. In thinking
mode the estimate says how much of the output was reasoning, as DeepSeek's own usage does
(``completion_tokens_details.reasoning_tokens``): in the answer a client reads and in the
ledger's row. Before, both counted no reasoning at all, and a reasoner stopped while it reasoned
was charged its whole output as answer.

The simulator's ``usage=none`` directive stands in for an upstream that counts nothing; a stop
sent while the model reasons is the everyday case (a stopped stream carries no usage)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User
from tests.support import SIM_KEY, open_socket
from tests.test_api_support import all_settled, bearer, chat, make_key, sse_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

SIM_HEADERS = {"Authorization": f"Bearer {SIM_KEY}"}
NO_USAGE = [{"role": "user", "content": "Plan the rollout. [[sim: usage=none]]"}]


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


def the_record(user: User) -> UsageRecord:
    all_settled(user=user)  # just after the answer's last byte
    [record] = UsageRecord.objects.filter(user=user)
    assert record.estimated and record.state == UsageRecord.State.SETTLED
    return record


def test_an_answer_without_usage_estimates_its_reasoning(
    base: str, headers: dict[str, str], alice: User
) -> None:
    response = chat(base, headers, {"model": "deepseek-reasoner", "messages": NO_USAGE})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["message"]["reasoning_content"]
    usage = body["usage"]
    reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
    assert 0 < reasoning < usage["completion_tokens"]
    record = the_record(alice)
    assert (record.reasoning_tokens, record.completion_tokens) == (
        reasoning,
        usage["completion_tokens"],
    )


def test_a_stream_without_usage_estimates_its_reasoning_on_its_last_chunk(
    base: str, headers: dict[str, str], alice: User
) -> None:
    response = chat(
        base,
        headers,
        {
            "model": "deepseek-reasoner",
            "messages": NO_USAGE,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    assert response.status_code == 200, response.text
    data, _ = sse_events(response.text)
    assert data[-1] == "[DONE]"
    usage = json.loads(data[-2])["usage"]
    assert 0 < usage["completion_tokens_details"]["reasoning_tokens"] < usage["completion_tokens"]
    assert (
        the_record(alice).reasoning_tokens == usage["completion_tokens_details"]["reasoning_tokens"]
    )


def test_an_estimate_outside_thinking_mode_has_no_reasoning_details(
    base: str, headers: dict[str, str], alice: User
) -> None:
    response = chat(base, headers, {"messages": NO_USAGE})
    assert response.status_code == 200, response.text
    assert "completion_tokens_details" not in response.json()["usage"]
    assert the_record(alice).reasoning_tokens == 0


async def test_a_reasoner_stopped_while_it_reasons_is_charged_reasoning(
    alice: User, reasoner_model: ModelConfig, simulator: str, generation_service: Any
) -> None:
    conversation = await Conversation.objects.acreate(
        owner=alice, model=reasoner_model, title="Rollout"
    )
    socket = await open_socket(alice, conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": "Plan the rollout. [[sim: tokens_per_s=20]]",
        }
    )
    reasoning = ""
    while len(reasoning) < 40:
        frame = await socket.receive(timeout=20)
        assert not (frame["type"] == "reply.delta" and frame.get("content")), "answered already"
        reasoning += frame.get("reasoning", "") if frame["type"] == "reply.delta" else ""
    reply_id = socket.of_type("message.created")[1]["message"]["id"]
    await socket.send({"type": "reply.cancel", "reply_id": reply_id})
    end = await socket.until_reply_ends()
    assert end["type"] == "reply.failed" and end["status"] == "cancelled", end
    await socket.close()

    reply = await Message.objects.aget(pk=reply_id)
    assert reply.reasoning.startswith(reasoning) and reply.content == ""
    record = await UsageRecord.objects.aget(message_id=reply_id)
    assert record.estimated and record.outcome == "cancelled"
    assert record.reasoning_tokens == record.completion_tokens > 0


def test_the_simulator_sends_no_usage_when_told(simulator: str) -> None:
    body = {"model": "deepseek-v4-flash", "messages": NO_USAGE}
    plain = httpx.post(f"{simulator}/chat/completions", json=body, headers=SIM_HEADERS)
    assert plain.status_code == 200, plain.text
    assert "usage" not in plain.json()
    streamed = httpx.post(
        f"{simulator}/chat/completions",
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
        headers=SIM_HEADERS,
    )
    data, _ = sse_events(streamed.text)
    assert data[-1] == "[DONE]"
    assert all(json.loads(d)["usage"] is None for d in data[:-1])
