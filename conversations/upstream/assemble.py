"""Turn DeepSeek chunks (streamed) or a completion body (non-streamed) into a ChatResult.

The streaming side is :class:`StreamAssembler`: one per attempt, fed one ``data`` payload at a
time; it returns the delta events to yield and keeps the running result. The non-streaming
side is :func:`parse_completion_body`. Both apply the same end-of-answer rules (§4.2, §8.5).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from .errors import (
    BadResponse,
    BlankJSONOutput,
    InsufficientSystemResource,
    QueueTimedOut,
    Truncated,
    UpstreamError,
    error_from_event,
)
from .events import (
    KNOWN_FINISH_REASONS,
    ChatResult,
    Completed,
    ContentDelta,
    Finish,
    LogprobsDelta,
    ReasoningDelta,
    StreamEvent,
    ToolCall,
    ToolCallDelta,
    Usage,
)

logger = logging.getLogger("conversations.upstream")


class _ToolCallParts:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.type = "function"
        self.arguments: list[str] = []


def _note_finish_reason(reason: str) -> None:
    if reason not in KNOWN_FINISH_REASONS:
        logger.warning("upstream sent an unknown finish_reason %r; passing it through", reason)


def check_answer(result: ChatResult, *, json_mode: bool) -> UpstreamError | None:
    """The error a finished answer amounts to, if any (§4.2 and §8.5)."""
    if result.finish_reason == "insufficient_system_resource":
        return InsufficientSystemResource()
    if (
        json_mode
        and result.finish_reason == "stop"
        and not result.tool_calls
        and not result.text.strip()
    ):
        return BlankJSONOutput()
    return None


class StreamAssembler:
    """Interprets the chunks of one streamed attempt.

    ``output_started`` becomes true with the first non-empty reasoning, content or tool-call
    delta; the role-only first chunk and keep-alives do not count. Until then a failure may be
    retried. In JSON mode (``hold_blank_content``) leading whitespace-only content is held back,
    because an all-blank answer is a retryable failure rather than output (§8.5).
    """

    __slots__ = (
        "_content",
        "_held",
        "_hold_blank",
        "_reasoning",
        "_tools",
        "api_key",
        "finish_reason",
        "logprobs_content",
        "logprobs_reasoning",
        "model",
        "output_started",
        "response_id",
        "usage",
    )

    def __init__(self, *, api_key: str, hold_blank_content: bool = False) -> None:
        self.api_key = api_key
        self._hold_blank = hold_blank_content
        self._held = ""
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._tools: dict[int, _ToolCallParts] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.logprobs_content: list[dict[str, Any]] = []
        self.logprobs_reasoning: list[dict[str, Any]] = []
        self.response_id: str | None = None
        self.model: str | None = None
        self.output_started = False

    def feed(self, payload: str) -> list[StreamEvent]:
        """Interpret one ``data`` payload; return the delta events it carries."""
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise BadResponse(detail="a stream event was not JSON") from None
        if type(chunk) is not dict:
            raise BadResponse(detail="a stream event was not a JSON object")
        try:
            return self._interpret(chunk)
        except (AttributeError, TypeError, KeyError, IndexError) as error:
            # A chunk not shaped as the reference's (a delta that is not an object, choices
            # that are not a list...): the provider's fault, not ours, said as any unreadable
            # response is (retried before any output), never a crash of the caller.
            raise BadResponse(
                detail=f"a stream event was not shaped as a completion chunk ({error!r})"
            ) from None

    def _interpret(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        error = chunk.get("error")
        if error is not None:
            raise error_from_event(error, self.api_key)
        if self.response_id is None:
            self.response_id = chunk.get("id")
            self.model = chunk.get("model")
        choices = chunk.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta")
            if delta:
                reasoning = delta.get("reasoning_content")
                if reasoning:
                    self._reasoning.append(reasoning)
                    events.append(ReasoningDelta(reasoning))
                    self.output_started = True
                content = delta.get("content")
                if content:
                    self._content.append(content)
                    if self._hold_blank and not self.output_started:
                        self._hold(content, events)
                    else:
                        events.append(ContentDelta(content))
                        self.output_started = True
                tool_calls = delta.get("tool_calls")
                if tool_calls:
                    self._add_tool_calls(tool_calls, events)
            logprobs = choice.get("logprobs")
            if logprobs:
                content_items = logprobs.get("content") or []
                reasoning_items = logprobs.get("reasoning_content") or []
                if content_items or reasoning_items:
                    self.logprobs_content.extend(content_items)
                    self.logprobs_reasoning.extend(reasoning_items)
                    events.append(LogprobsDelta(content_items, reasoning_items))
            finish_reason = choice.get("finish_reason")
            if finish_reason is not None:
                self.finish_reason = finish_reason
                _note_finish_reason(finish_reason)
        usage = chunk.get("usage")
        if usage is not None:
            # Last non-null usage wins: on the finish chunk or a trailing `choices: []` chunk.
            self.usage = usage
        return events

    def _hold(self, content: str, events: list[StreamEvent]) -> None:
        held = self._held + content
        if held.isspace():
            self._held = held
            return
        self._held = ""
        events.append(ContentDelta(held))
        self.output_started = True

    def _add_tool_calls(self, tool_calls: list[dict[str, Any]], events: list[StreamEvent]) -> None:
        for call in tool_calls:
            index = call.get("index", 0)
            parts = self._tools.get(index)
            if parts is None:
                parts = self._tools[index] = _ToolCallParts()
            call_id = call.get("id")
            if call_id:
                parts.id = call_id
            if call.get("type"):
                parts.type = call["type"]
            function = call.get("function") or {}
            name = function.get("name")
            if name:
                parts.name = name
            fragment = function.get("arguments") or ""
            if fragment:
                parts.arguments.append(fragment)
            if call_id or name or fragment:
                events.append(ToolCallDelta(index, call_id, name, fragment))
                self.output_started = True

    def result(self, attempts: int = 1) -> ChatResult:
        """The completion as assembled so far (also what an error carries as ``partial``)."""
        return ChatResult(
            text="".join(self._content),
            reasoning="".join(self._reasoning),
            tool_calls=[
                ToolCall(index, parts.id, parts.name, "".join(parts.arguments), parts.type)
                for index, parts in sorted(self._tools.items())
            ],
            finish_reason=self.finish_reason,
            usage=self.usage,
            logprobs_content=self.logprobs_content,
            logprobs_reasoning=self.logprobs_reasoning,
            response_id=self.response_id,
            model=self.model,
            attempts=attempts,
        )

    def finish(self, *, json_mode: bool, attempts: int) -> list[StreamEvent]:
        """After ``[DONE]``: the closing events, or raise the error the answer amounts to."""
        result = self.result(attempts)
        if result.finish_reason is None:
            # [DONE] without any finish_reason: the answer is not known to be complete.
            raise Truncated(detail="stream ended with [DONE] but no finish_reason")
        error = check_answer(result, json_mode=json_mode)
        if error is not None:
            raise error
        events: list[StreamEvent] = [Finish(result.finish_reason)]
        if result.usage is not None:
            events.append(Usage(result.usage))
        events.append(Completed(result))
        return events


def parse_completion_body(body: bytes, *, api_key: str, json_mode: bool) -> ChatResult:
    """Parse a non-streaming 200 body, tolerating the queue's leading blank lines (§4.5)."""
    stripped = body.strip()
    if not stripped:
        if body:
            raise QueueTimedOut(detail=f"body of {len(body)} whitespace bytes and no JSON")
        raise QueueTimedOut(detail="empty body")
    try:
        data = json.loads(stripped)
    except ValueError:
        raise Truncated(detail="the completion body was cut or is not JSON") from None
    if not isinstance(data, dict):
        raise BadResponse(detail="the completion body is not a JSON object")
    if data.get("error") is not None:
        raise error_from_event(data["error"], api_key)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BadResponse(detail="the completion body has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    tool_calls = []
    for position, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        tool_calls.append(
            ToolCall(
                index=call.get("index", position),
                id=call.get("id") or "",
                name=function.get("name") or "",
                arguments=function.get("arguments") or "",
                type=call.get("type") or "function",
            )
        )
    logprobs = choice.get("logprobs") or {}
    finish_reason = choice.get("finish_reason")
    if finish_reason is not None:
        _note_finish_reason(finish_reason)
    result = ChatResult(
        text=message.get("content") or "",
        reasoning=message.get("reasoning_content") or "",
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        usage=data.get("usage"),
        logprobs_content=logprobs.get("content") or [],
        logprobs_reasoning=logprobs.get("reasoning_content") or [],
        response_id=data.get("id"),
        model=data.get("model"),
    )
    error = check_answer(result, json_mode=json_mode)
    if error is not None:
        error.partial = result
        raise error
    return result
