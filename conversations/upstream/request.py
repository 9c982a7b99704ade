"""Build the JSON body of ``POST /chat/completions`` from a registry entry (§3).

Decisions, in one place:

* ``thinking`` is sent as ``{"type": "enabled"|"disabled"}`` for every target except a legacy
  one (``reasoning_passback == "strip"``): R1-era servers predate the field, and there the
  model id alone decides the mode, so the field is omitted rather than risk an unknown field.
* ``reasoning_content`` pass-back (§3.3): with ``"send"`` every assistant message carries it,
  ``""`` when the stored message has none (a tool-call turn without it is a 400 in thinking
  mode, and placeholders are accepted); with ``"strip"`` it is removed from every message,
  because the R1-era reasoner answers 400 to any input ``reasoning_content``.
* Only the parameters documented in §3.1 are forwarded; ``model``, ``messages``, ``stream``,
  ``stream_options`` and ``thinking`` are the client's own. Streams always ask for usage.
* Message fields are limited to the documented ones per §3.2, and an assistant message with
  tool calls but no content gets ``content: ""`` rather than null.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

logger = logging.getLogger("conversations.upstream")

#: Request parameters of §3.1 that the client forwards when the caller gives them.
FORWARDED_PARAMETERS = frozenset(
    {
        "max_tokens",
        "temperature",
        "top_p",
        "frequency_penalty",
        "presence_penalty",
        "stop",
        "response_format",
        "tools",
        "tool_choice",
        "logprobs",
        "top_logprobs",
        "reasoning_effort",
        "user_id",
    }
)

#: Keys the client sets itself; passing them as parameters is ignored without a warning.
_OWN_KEYS = frozenset({"model", "messages", "stream", "stream_options", "thinking"})

_MESSAGE_FIELDS = frozenset(
    {"role", "content", "name", "tool_calls", "tool_call_id", "reasoning_content", "prefix"}
)


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """The upstream side of a registry entry: which id to call and in which mode.

    ``reasoning_passback`` is ``"send"`` for current servers (V3.2 and later) and ``"strip"``
    for a legacy R1-era reasoner, which rejects ``reasoning_content`` in its input.
    ``name`` is the name callers know the model by (the registry's): a provider's explanation
    of a refused request that names the upstream id reaches them naming this instead (None:
    as the provider wrote it).
    """

    upstream_model: str
    thinking: bool
    reasoning_passback: Literal["send", "strip"] = "send"
    name: str | None = None


def _prepare_message(message: Mapping[str, Any], passback: str) -> dict[str, Any]:
    prepared = {key: value for key, value in message.items() if key in _MESSAGE_FIELDS}
    if passback == "strip":
        prepared.pop("reasoning_content", None)
    elif prepared.get("role") == "assistant" and prepared.get("reasoning_content") is None:
        prepared["reasoning_content"] = ""
    if (
        prepared.get("role") == "assistant"
        and prepared.get("content") is None
        and prepared.get("tool_calls")
    ):
        prepared["content"] = ""
    return prepared


def build_chat_request(
    target: ModelTarget,
    messages: Iterable[Mapping[str, Any]],
    params: Mapping[str, Any] | None = None,
    *,
    stream: bool,
) -> dict[str, Any]:
    """The request body for ``target``. ``params`` holds optional §3.1 parameters."""
    body: dict[str, Any] = {
        "model": target.upstream_model,
        "messages": [_prepare_message(m, target.reasoning_passback) for m in messages],
    }
    if target.reasoning_passback != "strip":
        body["thinking"] = {"type": "enabled" if target.thinking else "disabled"}
    dropped = []
    for key, value in (params or {}).items():
        if key in FORWARDED_PARAMETERS:
            if value is not None:
                body[key] = value
        elif key not in _OWN_KEYS:
            dropped.append(key)
    if dropped:
        logger.warning("not forwarding undocumented parameters: %s", ", ".join(sorted(dropped)))
    body["stream"] = stream
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def is_json_mode(params: Mapping[str, Any] | None) -> bool:
    """Whether the request asks for JSON output (whose blank answer is retried)."""
    response_format = (params or {}).get("response_format")
    return isinstance(response_format, Mapping) and response_format.get("type") == "json_object"
