"""The official OpenAI SDK works unchanged against our API: completions streamed or not, the
reasoner's reasoning, JSON mode, tool calls, logprobs, and the model list."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import all_settled, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def client(base: str, alice: User, chat_model: ModelConfig) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=make_key(alice), max_retries=0)


def _settled(user: User) -> list[UsageRecord]:
    all_settled(user=user)  # just after the answer's last byte
    return list(UsageRecord.objects.filter(user=user).order_by("created_at"))


def test_a_completion_comes_back_in_deepseek_shape_and_is_charged(
    client: openai.OpenAI, alice: User
) -> None:
    completion = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": "Hi [[sim: say=Hello team]]"}],
    )
    assert completion.object == "chat.completion"
    assert completion.model == "deepseek-chat"
    assert len(completion.id) == 36 and not completion.id.startswith("chatcmpl")
    assert len(completion.system_fingerprint or "") == 32
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello team"
    assert choice.finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    extra: dict[str, Any] = usage.model_extra or {}
    # Both cache spellings, exactly as the upstream sent them.
    assert extra["prompt_cache_hit_tokens"] + extra["prompt_cache_miss_tokens"] == (
        usage.prompt_tokens
    )
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == extra["prompt_cache_hit_tokens"]
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    [record] = _settled(alice)
    assert record.purpose == "api" and record.state == "settled" and record.outcome == "complete"
    assert record.api_key is not None and record.api_key.user_id == alice.pk
    assert record.total_tokens == usage.total_tokens and not record.estimated


def test_a_stream_delivers_every_delta_and_usage_on_the_last_chunk(
    client: openai.OpenAI, alice: User
) -> None:
    stream = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": "[[sim: say=one two three four five six]]"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:])
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "one two three four five six"
    assert len({c.id for c in chunks}) == 1
    finishing = [c for c in chunks if c.choices[0].finish_reason]
    assert len(finishing) == 1 and finishing[0] is chunks[-1]
    assert chunks[-1].usage is not None and all(c.usage is None for c in chunks[:-1])
    [record] = _settled(alice)
    assert record.outcome == "complete" and record.total_tokens == chunks[-1].usage.total_tokens


def test_the_reasoner_returns_its_reasoning_beside_the_answer(
    client: openai.OpenAI, reasoner_model: ModelConfig
) -> None:
    completion = client.chat.completions.create(
        model="deepseek-reasoner",
        messages=[{"role": "user", "content": "What is 2+2? [[sim: say=4]]"}],
    )
    message = completion.choices[0].message
    assert message.content == "4"
    reasoning = (message.model_extra or {})["reasoning_content"]
    assert isinstance(reasoning, str) and reasoning
    details = completion.usage.completion_tokens_details  # type: ignore[union-attr]
    assert details is not None and details.reasoning_tokens

    stream = client.chat.completions.create(
        model="deepseek-reasoner",
        messages=[{"role": "user", "content": "What is 2+2? [[sim: say=4]]"}],
        stream=True,
    )
    chunks = list(stream)
    first = chunks[0].choices[0].delta
    assert (first.model_extra or {}).get("reasoning_content") == ""
    reasoning_parts = [
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") for c in chunks
    ]
    streamed_reasoning = "".join(p for p in reasoning_parts if p)
    assert streamed_reasoning
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "4"


def test_thinking_can_be_switched_on_per_request_like_upstream(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": "[[sim: say=ok]]"}],
        extra_body={"thinking": {"type": "enabled"}},
    )
    assert (completion.choices[0].message.model_extra or {})["reasoning_content"]


def test_json_mode_answers_with_json(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="deepseek-chat",
        messages=[
            {"role": "system", "content": 'Answer in json like {"city": "..."}'},
            {"role": "user", "content": "Where is the Eiffel tower?"},
        ],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "lookup_ticket",
            "description": "Fetch a ticket by key",
            "parameters": {
                "type": "object",
                "properties": {"key": {"type": "string"}},
                "required": ["key"],
            },
        },
    }
]


def test_tool_calls_come_back_whole_and_in_fragments(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Use lookup_ticket for OPS-17"}]
    completion = client.chat.completions.create(
        model="deepseek-chat", messages=messages, tools=TOOLS
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "lookup_ticket"  # type: ignore[union-attr]
    assert "key" in json.loads(call.function.arguments)  # type: ignore[union-attr]

    chunks = list(
        client.chat.completions.create(
            model="deepseek-chat", messages=messages, tools=TOOLS, stream=True
        )
    )
    fragments = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert fragments[0].id and fragments[0].function.name == "lookup_ticket"  # type: ignore[union-attr]
    assert all(f.id is None for f in fragments[1:])
    arguments = "".join(f.function.arguments or "" for f in fragments)  # type: ignore[union-attr]
    assert "key" in json.loads(arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    # The second leg: the tool's answer goes back and the model answers in text.
    follow_up = client.chat.completions.create(
        model="deepseek-chat",
        tools=TOOLS,
        messages=[
            *messages,
            {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": '{"status": "in review"}'},
        ],
    )
    assert follow_up.choices[0].finish_reason == "stop"
    assert follow_up.choices[0].message.content


def test_logprobs_come_with_each_token(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": "[[sim: say=alpha beta]]"}],
        logprobs=True,
        top_logprobs=2,
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert "".join(item.token for item in logprobs.content) == "alpha beta"
    assert all(len(item.top_logprobs) == 2 for item in logprobs.content)

    chunks = list(
        client.chat.completions.create(
            model="deepseek-chat",
            messages=[{"role": "user", "content": "[[sim: say=alpha beta]]"}],
            logprobs=True,
            stream=True,
        )
    )
    streamed = [
        item.token
        for c in chunks
        if c.choices[0].logprobs and c.choices[0].logprobs.content
        for item in c.choices[0].logprobs.content
    ]
    assert "".join(streamed) == "alpha beta"


def test_the_model_list_shows_our_names(client: openai.OpenAI, reasoner_model: ModelConfig) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == ["deepseek-chat", "deepseek-reasoner"]
    assert all(m.object == "model" and m.owned_by == "deepseek" for m in models.data)


def test_the_async_sdk_works_too(base: str, alice: User, chat_model: Any) -> None:
    key = make_key(alice)

    async def ask() -> str | None:
        async with openai.AsyncOpenAI(base_url=base + "/v1", api_key=key, max_retries=0) as sdk:
            completion = await sdk.chat.completions.create(
                model="deepseek-chat", messages=[{"role": "user", "content": "[[sim: say=async]]"}]
            )
            return completion.choices[0].message.content

    assert asyncio.run(ask()) == "async"
