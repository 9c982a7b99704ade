"""Chunks become typed delta events and one assembled result (no network)."""

from __future__ import annotations

import json
import logging

import pytest

from conversations.upstream import (
    BlankJSONOutput,
    Completed,
    ContentDelta,
    Finish,
    InsufficientSystemResource,
    InvalidRequest,
    LogprobsDelta,
    RateLimited,
    ReasoningDelta,
    ServerError,
    ToolCall,
    ToolCallDelta,
    Truncated,
    Usage,
)
from conversations.upstream.assemble import StreamAssembler
from tests.test_upstream_support import API_KEY, USAGE, chunk


def feed(assembler: StreamAssembler, *chunks: dict[str, object]) -> list[object]:
    events: list[object] = []
    for item in chunks:
        events += assembler.feed(json.dumps(item))
    return events


def test_the_role_only_first_chunk_is_not_output() -> None:
    assembler = StreamAssembler(api_key=API_KEY)
    assert feed(assembler, chunk("", role=True), chunk(reasoning="", role=True)) == []
    assert not assembler.output_started


def test_reasoning_then_content_deltas_in_order() -> None:
    assembler = StreamAssembler(api_key=API_KEY)
    events = feed(
        assembler,
        chunk(None, reasoning="", role=True),
        chunk(None, reasoning="Two plus"),
        chunk(None, reasoning=" two"),
        chunk("4", reasoning=None),
        chunk("", finish="stop", usage=USAGE),
    )
    assert events == [ReasoningDelta("Two plus"), ReasoningDelta(" two"), ContentDelta("4")]
    closing = assembler.finish(json_mode=False, attempts=1)
    assert closing[:2] == [Finish("stop"), Usage(USAGE)]
    assert isinstance(closing[2], Completed)
    result = closing[2].result
    assert (result.text, result.reasoning, result.finish_reason) == ("4", "Two plus two", "stop")
    assert result.usage == USAGE


def test_parallel_tool_calls_are_assembled_per_index() -> None:
    assembler = StreamAssembler(api_key=API_KEY)
    first = {
        "index": 0,
        "id": "call_00_a",
        "type": "function",
        "function": {"name": "lookup", "arguments": ""},
    }
    second = {
        "index": 1,
        "id": "call_01_b",
        "type": "function",
        "function": {"name": "weather", "arguments": ""},
    }
    events = feed(
        assembler,
        chunk(None, reasoning="", role=True),
        chunk(tool_calls=[first, second]),
        chunk(tool_calls=[{"index": 1, "function": {"arguments": '{"city":'}}]),
        chunk(tool_calls=[{"index": 0, "function": {"arguments": '{"key": "OPS-17"}'}}]),
        chunk(tool_calls=[{"index": 1, "function": {"arguments": ' "Oslo"}'}}]),
        chunk("", finish="tool_calls", usage=USAGE),
    )
    assert events[0] == ToolCallDelta(0, "call_00_a", "lookup", "")
    assert events[1] == ToolCallDelta(1, "call_01_b", "weather", "")
    assert events[2] == ToolCallDelta(1, None, None, '{"city":')
    result = assembler.result()
    assert result.tool_calls == [
        ToolCall(0, "call_00_a", "lookup", '{"key": "OPS-17"}'),
        ToolCall(1, "call_01_b", "weather", '{"city": "Oslo"}'),
    ]
    assert json.loads(result.tool_calls[1].arguments) == {"city": "Oslo"}
    assert result.tool_calls[0].as_message_dict() == {
        "id": "call_00_a",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"key": "OPS-17"}'},
    }


def test_usage_on_a_trailing_chunk_without_choices_is_taken() -> None:
    assembler = StreamAssembler(api_key=API_KEY)
    trailing = {"id": "x", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}
    feed(assembler, chunk("Hi", role=True), chunk("", finish="stop"), trailing)
    assert assembler.result().usage == USAGE
    assert assembler.result().finish_reason == "stop"


def test_the_last_non_null_usage_wins() -> None:
    assembler = StreamAssembler(api_key=API_KEY)
    later = dict(USAGE, completion_tokens=9, total_tokens=21)
    trailing = {"id": "x", "choices": [], "usage": later}
    feed(assembler, chunk("Hi", finish="stop", usage=USAGE), trailing, chunk("", usage=None))
    assert assembler.result().usage == later


def test_an_unknown_finish_reason_is_accepted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    assembler = StreamAssembler(api_key=API_KEY)
    with caplog.at_level(logging.WARNING, logger="conversations.upstream"):
        feed(assembler, chunk("Hi", role=True), chunk("", finish="galaxy_brain"))
        closing = assembler.finish(json_mode=False, attempts=1)
    assert closing[0] == Finish("galaxy_brain")
    assert "galaxy_brain" in caplog.text


def test_insufficient_system_resource_is_an_error_with_the_partial_text() -> None:
    assembler = StreamAssembler(api_key=API_KEY)
    feed(
        assembler, chunk("Half an ans", role=True), chunk("", finish="insufficient_system_resource")
    )
    with pytest.raises(InsufficientSystemResource) as caught:
        assembler.finish(json_mode=False, attempts=1)
    assert caught.value.retryable


def test_done_without_a_finish_reason_is_truncated() -> None:
    assembler = StreamAssembler(api_key=API_KEY)
    feed(assembler, chunk("Hi", role=True))
    with pytest.raises(Truncated):
        assembler.finish(json_mode=False, attempts=1)


def test_an_error_event_becomes_a_typed_error() -> None:
    assembler = StreamAssembler(api_key=API_KEY)
    cases = [
        ({"message": "bad things", "type": "invalid_request_error"}, InvalidRequest),
        ({"message": "slow down", "type": "rate_limit_error"}, RateLimited),
        ({"message": "oops", "type": "server_error"}, ServerError),
    ]
    for error, kind in cases:
        with pytest.raises(kind) as caught:
            assembler.feed(json.dumps({"error": error}))
        assert type(caught.value) is kind
    with pytest.raises(InvalidRequest) as caught:
        assembler.feed(
            json.dumps({"error": {"message": "bad things", "type": "invalid_request_error"}})
        )
    assert caught.value.message == "bad things"


def test_logprobs_items_are_passed_on_and_kept() -> None:
    assembler = StreamAssembler(api_key=API_KEY)
    item = {"token": "OK", "logprob": -2.4e-05, "bytes": [79, 75], "top_logprobs": []}
    piece = chunk("OK", role=True)
    piece["choices"][0]["logprobs"] = {"content": [item], "reasoning_content": None}
    events = feed(assembler, piece)
    assert events == [ContentDelta("OK"), LogprobsDelta([item], [])]
    assert assembler.result().logprobs_content == [item]


def test_json_mode_holds_leading_blank_content_until_real_text() -> None:
    assembler = StreamAssembler(api_key=API_KEY, hold_blank_content=True)
    assert feed(assembler, chunk("", role=True), chunk("  "), chunk("\n")) == []
    assert not assembler.output_started
    assert feed(assembler, chunk('{"a": 1}')) == [ContentDelta('  \n{"a": 1}')]
    assert assembler.output_started


def test_json_mode_all_blank_answer_is_a_retryable_error() -> None:
    assembler = StreamAssembler(api_key=API_KEY, hold_blank_content=True)
    feed(assembler, chunk("", role=True), chunk("   "), chunk("", finish="stop"))
    with pytest.raises(BlankJSONOutput) as caught:
        assembler.finish(json_mode=True, attempts=1)
    assert caught.value.retryable
    assert not assembler.output_started


@pytest.mark.parametrize(
    "shape",
    [
        {"choices": [{"index": 0, "delta": "Hello", "finish_reason": None}]},
        {"choices": [None]},
        {"choices": "Hello"},
        {"choices": [{"index": 0, "delta": {"tool_calls": "f()"}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": "f"}]}}]},
        {"choices": [{"index": 0, "delta": {"content": "x"}, "logprobs": "high"}]},
    ],
)
def test_a_chunk_not_shaped_as_the_references_is_a_bad_response(shape: dict[str, object]) -> None:
    """The provider's fault, said as any unreadable response (retried before any output),
    never an exception of ours that the caller would take for a bug."""
    from conversations.upstream import BadResponse

    assembler = StreamAssembler(api_key=API_KEY)
    with pytest.raises(BadResponse) as raised:
        feed(assembler, {**chunk(), **shape})
    assert "not shaped as a completion chunk" in str(raised.value.detail)
