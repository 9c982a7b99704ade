"""Serialising completions exactly as DeepSeek does (§4, §5), cheaply enough for big benchmarks.

The constant part of every chunk (id, created, model, fingerprint) is rendered once per stream;
each chunk then only JSON-encodes its own small delta.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

from simulator.generation import Reply, token_logprobs
from simulator.validation import ChatRequest


class PromptTokensDetails(TypedDict):
    cached_tokens: int


class CompletionTokensDetails(TypedDict):
    reasoning_tokens: int


class Usage(TypedDict, total=False):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    completion_tokens_details: CompletionTokensDetails
    prompt_cache_hit_tokens: int
    prompt_cache_miss_tokens: int


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def build_usage(prompt_tokens: int, cache_hit: int, reply: Reply, thinking: bool) -> Usage:
    """Usage in upstream's key order, with both cache-hit spellings."""
    usage: Usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cache_hit},
    }
    if thinking:
        usage["completion_tokens_details"] = {"reasoning_tokens": len(reply.reasoning)}
    usage["prompt_cache_hit_tokens"] = cache_hit
    usage["prompt_cache_miss_tokens"] = prompt_tokens - cache_hit
    return usage


@dataclass
class Envelope:
    """The per-completion constants shared by the body or by every chunk."""

    id: str
    created: int
    model: str
    system_fingerprint: str


def completion_body(
    envelope: Envelope,
    request: ChatRequest,
    reply: Reply,
    usage: Usage | None,
    logprob_rng: random.Random,
    logprobs_as: str | None = None,
) -> bytes:
    """The non-streamed answer (§4); without ``usage`` (the ``usage=none`` directive) the
    object has no usage field. ``logprobs_as`` (the ``logprobs`` directive): ``"none"`` answers
    logprobs asked for with null, ``"empty"`` with empty lists."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content_text}
    if request.thinking:
        message["reasoning_content"] = reply.reasoning_text
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "index": call.index,
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in reply.tool_calls
        ]
    logprobs: dict[str, Any] | None = None
    if request.logprobs and logprobs_as != "none":
        empty = logprobs_as == "empty"
        top = request.top_logprobs
        logprobs = {"content": [] if empty else token_logprobs(reply.content, top, logprob_rng)}
        if request.thinking:
            logprobs["reasoning_content"] = (
                [] if empty else token_logprobs(reply.reasoning, top, logprob_rng)
            )
    body = {
        "id": envelope.id,
        "object": "chat.completion",
        "created": envelope.created,
        "model": envelope.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": logprobs,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": usage,
        "system_fingerprint": envelope.system_fingerprint,
    }
    if usage is None:
        del body["usage"]
    return dumps(body).encode()


@dataclass
class StreamEvent:
    data: bytes
    tokens: int


DONE = b"data: [DONE]\n\n"


def stream_events(
    envelope: Envelope,
    request: ChatRequest,
    reply: Reply,
    usage: Usage,
    *,
    chunk_tokens: int,
    usage_placement: str,
    logprob_rng: random.Random,
    logprobs_as: str | None = None,
) -> Iterator[StreamEvent]:
    """Every `data:` event of the stream except `[DONE]`, in wire order (§5.3, §5.4).
    ``logprobs_as`` (the ``logprobs`` directive): ``"none"`` sends every chunk's logprobs as
    null though they were asked for (a provider that ignores the parameter), ``"empty"`` as
    empty lists."""
    head = (
        'data: {"id":'
        + dumps(envelope.id)
        + ',"object":"chat.completion.chunk","created":'
        + str(envelope.created)
        + ',"model":'
        + dumps(envelope.model)
        + ',"system_fingerprint":'
        + dumps(envelope.system_fingerprint)
        + ',"choices":[{"index":0,"delta":'
    )
    # Usage on intermediate chunks: null with include_usage, absent without (§5.4).
    pending_usage = ',"usage":null' if request.include_usage else ""
    tail = ',"logprobs":null,"finish_reason":null}]' + pending_usage + "}\n\n"
    thinking = request.thinking
    want_logprobs = request.logprobs and logprobs_as != "none"
    top = request.top_logprobs

    def entries_for(group: list[str]) -> str:
        return "[]" if logprobs_as == "empty" else dumps(token_logprobs(group, top, logprob_rng))

    def chunk(delta: str, tokens: int, logprobs: str | None = None) -> StreamEvent:
        if logprobs is None:
            return StreamEvent((head + delta + tail).encode(), tokens)
        middle = ',"logprobs":' + logprobs + ',"finish_reason":null}]' + pending_usage + "}\n\n"
        return StreamEvent((head + delta + middle).encode(), tokens)

    if thinking:
        yield chunk('{"role":"assistant","content":null,"reasoning_content":""}', 0)
    else:
        yield chunk('{"role":"assistant","content":""}', 0)

    for start in range(0, len(reply.reasoning), chunk_tokens):
        group = reply.reasoning[start : start + chunk_tokens]
        lp = None
        if want_logprobs:
            lp = '{"content":null,"reasoning_content":' + entries_for(group) + "}"
        delta = '{"content":null,"reasoning_content":' + dumps("".join(group)) + "}"
        yield chunk(delta, len(group), lp)

    content_suffix = ',"reasoning_content":null}' if thinking else "}"
    for start in range(0, len(reply.content), chunk_tokens):
        group = reply.content[start : start + chunk_tokens]
        lp = None
        if want_logprobs:
            lp = '{"content":' + entries_for(group) + "}"
        yield chunk('{"content":' + dumps("".join(group)) + content_suffix, len(group), lp)

    for call in reply.tool_calls:
        first = {
            "index": call.index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        yield chunk('{"tool_calls":[' + dumps(first) + "]}", 1)
        for start in range(0, len(call.argument_pieces), chunk_tokens):
            group = call.argument_pieces[start : start + chunk_tokens]
            fragment = {"index": call.index, "function": {"arguments": "".join(group)}}
            yield chunk('{"tool_calls":[' + dumps(fragment) + "]}", len(group))

    final_delta = '{"content":"","reasoning_content":null}' if thinking else '{"content":""}'
    # "none": no usage anywhere, as an upstream that counts nothing would send (not DeepSeek).
    trailing = usage_placement == "trailing"
    finish_usage = (
        pending_usage if trailing or usage_placement == "none" else ',"usage":' + dumps(usage)
    )
    yield StreamEvent(
        (
            head
            + final_delta
            + ',"logprobs":null,"finish_reason":'
            + dumps(reply.finish_reason)
            + "}]"
            + finish_usage
            + "}\n\n"
        ).encode(),
        0,
    )
    if trailing and request.include_usage:
        trailer = {
            "id": envelope.id,
            "object": "chat.completion.chunk",
            "created": envelope.created,
            "model": envelope.model,
            "system_fingerprint": envelope.system_fingerprint,
            "choices": [],
            "usage": usage,
        }
        yield StreamEvent(b"data: " + dumps(trailer).encode() + b"\n\n", 0)
