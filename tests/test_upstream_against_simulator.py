"""The client against the DeepSeek simulator: the client side of deepseek-api.md §11."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from conversations.upstream import (
    AuthError,
    BlankJSONOutput,
    Completed,
    ContentDelta,
    Finish,
    InsufficientSystemResource,
    InvalidRequest,
    ModelTarget,
    QueueTimedOut,
    RateLimited,
    ReasoningDelta,
    RetryNotice,
    Stalled,
    ToolCallDelta,
    Truncated,
    UnknownModel,
    Usage,
)
from simulator.testing import running_simulator
from tests.test_upstream_support import API_KEY, collect, upstream_client

CHAT = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")
REASONER = ModelTarget("deepseek-flash", thinking=True, reasoning_passback="send")
LEGACY_REASONER = ModelTarget("deepseek-reasoner", thinking=True, reasoning_passback="strip")
TOOLS = [
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


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def result_of(events: list[Any]) -> Any:
    assert isinstance(events[-1], Completed)
    return events[-1].result


@pytest.mark.asyncio
async def test_a_wrong_key_is_a_non_retryable_auth_error() -> None:  # §11 items 1-2
    with running_simulator(api_key="sk-the-right-one") as url:
        async with upstream_client(url) as client:
            with pytest.raises(AuthError) as caught:
                await collect(client.stream_chat(CHAT, ask("Hi")))
    assert caught.value.http_status == 401
    assert not caught.value.retryable
    assert API_KEY not in repr(caught.value) + caught.value.detail


@pytest.mark.asyncio
async def test_unknown_and_retired_models_are_unknown_models() -> None:  # §11 item 3
    """The provider's 400 for an id it does not serve is our registry's fault (a 502 for the
    caller); its own words are kept for the log."""
    with running_simulator() as url:
        async with upstream_client(url) as client:
            with pytest.raises(UnknownModel) as unknown:
                await client.complete_chat(ModelTarget("nope", False, "send"), ask("Hi"))
            with pytest.raises(UnknownModel) as retired:
                await client.complete_chat(ModelTarget("deepseek-chat", False, "send"), ask("Hi"))
    assert unknown.value.detail.endswith(": Model Not Exist")
    assert "but you passed deepseek-chat." in retired.value.detail
    assert unknown.value.http_status == retired.value.http_status == 502


@pytest.mark.asyncio
async def test_a_non_streaming_answer_has_consistent_usage() -> None:  # §11 item 7
    with running_simulator() as url:
        async with upstream_client(url) as client:
            result = await client.complete_chat(CHAT, ask("[[sim: say=Deploy 4.2 shipped.]] Hi"))
    usage = result.usage
    assert result.text == "Deploy 4.2 shipped."
    assert result.finish_reason == "stop"
    assert usage["prompt_tokens"] == (
        usage["prompt_cache_hit_tokens"] + usage["prompt_cache_miss_tokens"]
    )
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.asyncio
async def test_thinking_and_plain_modes_report_reasoning_alike() -> None:  # §11 item 8
    with running_simulator() as url:
        async with upstream_client(url) as client:
            thinking = await client.complete_chat(REASONER, ask("Why is the sky blue?"))
            plain = await client.complete_chat(CHAT, ask("Why is the sky blue?"))
    assert thinking.reasoning
    assert (
        thinking.usage["completion_tokens_details"]["reasoning_tokens"]
        <= (thinking.usage["completion_tokens"])
    )
    assert plain.reasoning == ""


@pytest.mark.asyncio
async def test_a_streamed_tool_call_is_assembled_and_parses() -> None:  # §11 items 9, 15
    params = {"tools": TOOLS}
    with running_simulator() as url:
        async with upstream_client(url) as client:
            events = await collect(
                client.stream_chat(REASONER, ask("[[sim: tool=lookup_ticket]] OPS-17?"), params)
            )
            plain = await client.complete_chat(
                REASONER, ask("[[sim: tool=lookup_ticket]] OPS-17?"), params
            )
    result = result_of(events)
    assert result.finish_reason == "tool_calls"
    assert [c.name for c in result.tool_calls] == ["lookup_ticket"]
    assert isinstance(json.loads(result.tool_calls[0].arguments), dict)
    first = next(e for e in events if isinstance(e, ToolCallDelta))
    assert first.id == result.tool_calls[0].id and first.name == "lookup_ticket"
    assert plain.finish_reason == "tool_calls"
    assert isinstance(plain.tool_calls[0].arguments, str)


@pytest.mark.asyncio
async def test_queue_keepalives_before_a_non_streaming_body_are_tolerated() -> None:  # item 10
    with running_simulator(keepalive_interval_s=0.05) as url:
        async with upstream_client(url) as client:
            result = await client.complete_chat(CHAT, ask("[[sim: queue=0.3 say=Served.]] Hi"))
    assert result.text == "Served."


@pytest.mark.asyncio
async def test_a_stream_ends_with_done_and_keepalives_never_reach_the_output() -> None:
    # §11 items 11-13: keep-alives during the queue, role-only first chunk, [DONE].
    with running_simulator(keepalive_interval_s=0.05) as url:
        async with upstream_client(url) as client:
            events = await collect(
                client.stream_chat(CHAT, ask("[[sim: queue=0.3 say=Hello team]] Hi"))
            )
    deltas = [e for e in events if isinstance(e, ContentDelta)]
    assert "".join(d.text for d in deltas) == "Hello team"
    assert all(":" not in d.text for d in deltas)
    result = result_of(events)
    assert result.text == "Hello team"
    assert result.response_id
    assert result.attempts == 1


@pytest.mark.asyncio
async def test_reasoning_deltas_come_before_content() -> None:  # §11 item 14
    with running_simulator() as url:
        async with upstream_client(url) as client:
            events = await collect(client.stream_chat(REASONER, ask("Explain DNS briefly.")))
    kinds = [type(e) for e in events if isinstance(e, ReasoningDelta | ContentDelta)]
    first_content = kinds.index(ContentDelta)
    assert ReasoningDelta in kinds[:first_content]
    assert ReasoningDelta not in kinds[first_content:]


@pytest.mark.asyncio
@pytest.mark.parametrize("placement", ["finish", "trailing"])
async def test_usage_is_taken_from_either_placement(placement: str) -> None:  # §11 item 16
    with running_simulator(usage_placement=placement) as url:
        async with upstream_client(url) as client:
            events = await collect(client.stream_chat(CHAT, ask("[[sim: say=one two three]] Hi")))
    usage_events = [e for e in events if isinstance(e, Usage)]
    assert len(usage_events) == 1
    usage = usage_events[0].usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert result_of(events).usage == usage
    assert [e for e in events if isinstance(e, Finish)] == [Finish("stop")]


@pytest.mark.asyncio
async def test_a_dropped_stream_is_an_error_with_its_partial() -> None:  # §11 item 17
    with running_simulator(tokens_per_s=200) as url:
        async with upstream_client(url) as client:
            with pytest.raises(Truncated) as caught:
                await collect(
                    client.stream_chat(
                        CHAT, ask("[[sim: drop_after=3 say=alpha beta gamma delta epsilon]] Hi")
                    )
                )
    assert caught.value.partial is not None
    assert caught.value.partial.text
    assert "alpha beta gamma delta epsilon".startswith(caught.value.partial.text)


@pytest.mark.asyncio
async def test_a_stalled_stream_is_reported_as_stalled() -> None:
    with running_simulator(tokens_per_s=200, keepalive_interval_s=0.05) as url:
        async with upstream_client(url, idle_timeout=0.5) as client:
            with pytest.raises(Stalled) as caught:
                await collect(
                    client.stream_chat(
                        CHAT, ask("[[sim: stall_after=2 keepalive=1 say=one two three four]] Hi")
                    )
                )
    assert caught.value.partial is not None and caught.value.partial.text


@pytest.mark.asyncio
async def test_finish_reasons_insufficient_resource_and_length() -> None:  # §11 item 18
    with running_simulator() as url:
        async with upstream_client(url, max_retries=1) as client:
            notices: list[RetryNotice] = []
            with pytest.raises(InsufficientSystemResource) as caught:
                await collect(
                    client.stream_chat(
                        CHAT,
                        ask("[[sim: finish=insufficient_system_resource]] Hi"),
                        on_retry=notices.append,
                    )
                )
            length = await client.complete_chat(CHAT, ask("[[sim: finish=length]] Hi"))
    assert caught.value.retryable
    # The simulator cuts the answer partway: output had started, so no retry, partial kept.
    assert caught.value.partial is not None and caught.value.partial.text
    assert notices == []
    assert length.finish_reason == "length"


@pytest.mark.asyncio
async def test_tool_call_history_without_reasoning_is_accepted_because_the_client_adds_it() -> (
    None
):  # §11 item 20
    history = [
        {"role": "user", "content": "What's the status of OPS-17?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_00_x7Qp2LmZ0aBcDeFgHiJk0001",
                    "type": "function",
                    "function": {"name": "lookup_ticket", "arguments": '{"key": "OPS-17"}'},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "call_00_x7Qp2LmZ0aBcDeFgHiJk0001",
            "content": '{"status": "in review"}',
        },
    ]
    with running_simulator(profile="current-2026") as url:
        async with upstream_client(url) as client:
            result = await client.complete_chat(REASONER, history, {"tools": TOOLS})
    assert result.finish_reason == "stop"
    assert result.text


@pytest.mark.asyncio
async def test_the_legacy_reasoner_gets_history_without_reasoning() -> None:  # §11 item 21
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "Greet back."},
        {"role": "user", "content": "How are you?"},
    ]
    with running_simulator(profile="legacy-2025", reasoner_input_policy="reject") as url:
        async with upstream_client(url) as client:
            result = await client.complete_chat(LEGACY_REASONER, history)
            with pytest.raises(InvalidRequest):
                # The same history sent as a current-era target keeps the reasoning: 400.
                await client.complete_chat(ModelTarget("deepseek-reasoner", True, "send"), history)
    assert result.text


@pytest.mark.asyncio
async def test_prefix_completion_works_only_under_beta() -> None:  # §11 item 22
    history = [
        {"role": "user", "content": "Write a haiku"},
        {"role": "assistant", "content": "Autumn", "prefix": True},
    ]
    with running_simulator() as url:
        async with upstream_client(url + "/beta") as beta:
            result = await beta.complete_chat(CHAT, history)
        async with upstream_client(url) as plain:
            with pytest.raises(InvalidRequest) as caught:
                await plain.complete_chat(CHAT, history)
    assert result.finish_reason == "stop"
    assert "beta" in caught.value.message


@pytest.mark.asyncio
async def test_a_blank_json_answer_is_retried() -> None:  # §11 item 23
    params = {"response_format": {"type": "json_object"}}
    notices: list[RetryNotice] = []
    with running_simulator() as url:
        async with upstream_client(url) as client:
            with pytest.raises(BlankJSONOutput):
                await collect(
                    client.stream_chat(
                        CHAT,
                        ask("[[sim: json=blank]] Reply in json"),
                        params,
                        on_retry=notices.append,
                    )
                )
            good = await client.complete_chat(CHAT, ask("Reply in json please"), params)
    assert len(notices) == 2
    assert all(isinstance(n.error, BlankJSONOutput) for n in notices)
    assert isinstance(json.loads(good.text), dict | list)


@pytest.mark.asyncio
async def test_the_upstream_queue_timeout_is_reported_after_its_close_not_before() -> None:
    # §11 item 26: keep-alives while queued, then the upstream gives up.
    with running_simulator(queue_delay_s=5, queue_timeout_s=0.6, keepalive_interval_s=0.1) as url:
        async with upstream_client(url, max_retries=0, idle_timeout=0.3) as client:
            started = time.monotonic()
            with pytest.raises(QueueTimedOut):
                await collect(client.stream_chat(CHAT, ask("Hi")))
            elapsed = time.monotonic() - started
    assert elapsed >= 0.6


@pytest.mark.asyncio
async def test_over_the_concurrency_limit_the_client_backs_off_and_succeeds() -> None:
    # §11 item 27: 429 without Retry-After, backoff with jitter, then success.
    notices: list[RetryNotice] = []
    with running_simulator(max_concurrency=1, tokens_per_s=50) as url:
        async with upstream_client(
            url, backoff_base_s=0.3, backoff_max_s=1.0, max_retries=3
        ) as client:
            first = asyncio.create_task(
                collect(client.stream_chat(CHAT, ask("[[sim: say=one two three four]] Hi")))
            )
            await asyncio.sleep(0.05)
            second = await collect(
                client.stream_chat(CHAT, ask("[[sim: say=second]] Hi"), on_retry=notices.append)
            )
            await first
    assert result_of(second).text == "second"
    assert notices and isinstance(notices[0].error, RateLimited)
    assert notices[0].error.retry_after is None
    assert notices[0].delay_s > 0


@pytest.mark.asyncio
async def test_a_transient_fault_is_retried_and_hidden() -> None:
    with running_simulator() as url:
        async with upstream_client(url) as client:
            events = await collect(
                client.stream_chat(CHAT, ask("[[sim: fault=503 fault_times=1 say=hello]] Hi"))
            )
    assert result_of(events).text == "hello"
    assert result_of(events).attempts == 2
