"""Typed events yielded by a streamed chat completion, and the result both call styles return.

A stream yields, in order: any number of :class:`ReasoningDelta`, :class:`ContentDelta`,
:class:`ToolCallDelta` and :class:`LogprobsDelta` as they arrive; then, once the upstream has
sent ``[DONE]``, one :class:`Finish`, one :class:`Usage` (when the provider reported usage)
and one :class:`Completed` carrying the assembled :class:`ChatResult`. Finish and usage are held
back until ``[DONE]`` so that an attempt that fails (and may be retried) never reports them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A non-empty piece of ``reasoning_content`` (thinking mode)."""

    text: str


@dataclass(frozen=True, slots=True)
class ContentDelta:
    """A non-empty piece of the answer."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of the tool call at ``index``; ``id``/``name`` come with its first fragment."""

    index: int
    id: str | None
    name: str | None
    arguments_fragment: str


@dataclass(frozen=True, slots=True)
class LogprobsDelta:
    """Log-probability items of one chunk, for the answer and for the reasoning."""

    content: list[dict[str, Any]]
    reasoning: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Finish:
    """The upstream's ``finish_reason`` (unknown values are passed through)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Usage:
    """The provider's usage object, exactly as sent (both cache-token spellings kept); after a
    retried attempt the provider billed, with that attempt's numbers added."""

    usage: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One assembled tool call. ``arguments`` is the JSON *string* the model produced."""

    index: int
    id: str
    name: str
    arguments: str
    type: str = "function"

    def as_message_dict(self) -> dict[str, Any]:
        """The shape an assistant message's ``tool_calls`` entry has in later requests."""
        return {
            "id": self.id,
            "type": self.type,
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class ChatResult:
    """Everything one completion produced. Also attached to errors as ``partial``.

    ``reasoning`` is ``""`` both when the upstream sent none and when it sent null: the two
    are treated alike (§11 item 8). ``usage`` is the last non-null usage the provider sent,
    or ``None`` when it sent none (then the caller must estimate); with the usage of earlier
    attempts the provider billed and the client tried again added (``client._fold_billed``).
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    logprobs_content: list[dict[str, Any]] = field(default_factory=list)
    logprobs_reasoning: list[dict[str, Any]] = field(default_factory=list)
    response_id: str | None = None
    model: str | None = None
    attempts: int = 1

    @property
    def output_text(self) -> str:
        """What the model produced, for estimating its tokens when the upstream sent no usage:
        the answer, the reasoning and the tool calls' names and arguments (all output tokens)."""
        calls = "".join(call.name + call.arguments for call in self.tool_calls)
        return self.text + self.reasoning + calls


@dataclass(frozen=True, slots=True)
class Completed:
    """The stream ended with ``[DONE]``; ``result`` is the assembled completion."""

    result: ChatResult


StreamEvent = (
    ReasoningDelta | ContentDelta | ToolCallDelta | LogprobsDelta | Finish | Usage | Completed
)

#: finish_reason values this client knows; others are accepted and logged.
KNOWN_FINISH_REASONS = frozenset(
    {"stop", "length", "tool_calls", "content_filter", "insufficient_system_resource"}
)
