"""DeepSeek's wire shapes for our own API: request validation, bodies, SSE chunks, errors.

Pure functions, no database and no network. Request rules follow the API reference (§3):
parameters go through :func:`conversations.params.check_params` like every other path, and
the rest (messages, streaming options, unknown fields) is checked here. Responses are built
exactly like DeepSeek's (§4, §5): UUID ids without a prefix, our registry name as ``model``,
usage passed through as the upstream sent it (both cache-token spellings), usage on the finish
chunk and then ``data: [DONE]``.

Decisions where DeepSeek's behaviour is unknown or unsuitable (documented for clients):

* Unknown top-level fields are refused with 400 naming the field (§3.1: "do not send them"),
  unless null (unset, as for every optional field: the OpenAI SDKs send ``"seed": null`` for
  a wrapper's ``seed=None``; nothing is forwarded), and except ``n: 1`` (or null), which some SDKs send by default, and ``max_completion_tokens``,
  OpenAI's newer name for ``max_tokens`` (LangChain's ChatOpenAI sends it instead), taken as
  ``max_tokens``; DeepSeek ignores it, so its limit would never apply; and OpenAI's ``user``
  (an end-user id that apps such as LibreChat send on every call), a string accepted and not
  used: the key already says who calls, and DeepSeek's own ``user_id`` is a separate field;
  and OpenAI's ``parallel_tool_calls`` (true, false or null), which LangChain sends on every
  ``with_structured_output`` call (``ChatDeepSeek``'s default method, ``ChatOpenAI``'s
  ``function_calling``), accepted and not forwarded: DeepSeek does not document it, and a
  named ``tool_choice`` already asks for the one call those clients want.
  Unknown fields inside a message are ignored (clients often echo the SDK's whole message
  objects back).
* Every malformed body is a 400 (DeepSeek's current behaviour), never a 422.
* ``prefix`` (chat prefix completion) is a beta feature we do not serve: 400, as upstream.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from conversations import params as param_rules
from conversations.errors import InvalidParameter
from conversations.models import ModelConfig
from conversations.text import compact_json
from conversations.upstream import ChatResult, ToolCallDelta

ROLES = ("system", "user", "assistant", "tool")
USER_ID = re.compile(r"^[A-Za-z0-9_-]+\Z")  # \Z: "$" would let a final "\n" pass
REASONING_EFFORTS = frozenset({"minimal", "low", "medium", "high", "xhigh", "max", "ultra"})
OUR_FIELDS = frozenset(
    {"model", "messages", "stream", "stream_options", "thinking", "reasoning_effort", "user_id"}
)
#: OpenAI's fields that clients send on their own (see above): accepted, as described there.
OPENAI_FIELDS = frozenset({"n", "max_completion_tokens", "user", "parallel_tool_calls"})
KNOWN_FIELDS = OUR_FIELDS | frozenset(param_rules.KNOWN) | OPENAI_FIELDS
#: OpenAI's ``user`` (the caller's own end-user id, for their tracking): accepted, not used.
MAX_USER_BYTES = 512

DONE = b"data: [DONE]\n\n"
KEEPALIVE = b": keep-alive\n\n"


dumps = compact_json


# --- errors ------------------------------------------------------------------------------------


class ErrorDetail(TypedDict):
    message: str
    type: str
    param: str | None
    code: str


class ErrorEnvelope(TypedDict):
    error: ErrorDetail


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def error_envelope(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> ErrorEnvelope:
    """DeepSeek's envelope. ``code`` is its literal ``invalid_request_error`` for client errors
    (§6: clients branch on the status); for limits and upstream failures it is our own code."""
    kind = ERROR_TYPES.get(status, "api_error")
    if code is None or status in (400, 401, 413, 415):
        code = "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# --- the request ----------------------------------------------------------------------------


@dataclass
class ChatRequest:
    """A validated ``POST /chat/completions`` body."""

    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]  # forwarded upstream: check_params' output plus max_tokens & co.
    max_tokens: int
    stream: bool = False
    include_usage: bool = False
    thinking: bool | None = None  # None: the model's own mode
    logprobs: bool = False
    max_tokens_asked: bool = False  # False: max_tokens is the model's default

    def history_params(self) -> dict[str, Any]:
        """The parameters worth keeping on a conversation saved from this call."""
        return {k: v for k, v in self.params.items() if k in param_rules.KNOWN}


def requested_model(body: Any) -> str:
    if not isinstance(body, dict):
        raise InvalidParameter("The request body must be a JSON object.")
    model = body.get("model")
    if model is None:
        raise InvalidParameter("model is required.", param="model")
    if not isinstance(model, str):
        raise InvalidParameter("model must be a string.", param="model")
    return model


def parse_chat_request(
    body: Mapping[str, Any], model: ModelConfig, *, max_tokens_cap: int | None
) -> ChatRequest:
    """The validated request, or :class:`InvalidParameter` naming the offending field."""
    # null is unset, for a field we do not know as for one we do: it asks for nothing.
    unknown = sorted(name for name in set(body) - KNOWN_FIELDS if body[name] is not None)
    if unknown:
        raise InvalidParameter(
            f"Unknown field: {unknown[0]}. This API accepts only the documented "
            "parameters of /chat/completions.",
            param=unknown[0],
        )
    n = body.get("n")
    if n is not None and (n != 1 or isinstance(n, bool)):
        raise InvalidParameter("n must be 1: one choice is always returned.", param="n")
    end_user = body.get("user")
    if end_user is not None and (
        not isinstance(end_user, str) or len(end_user.encode()) > MAX_USER_BYTES
    ):
        raise InvalidParameter(
            f"user must be a string of at most {MAX_USER_BYTES} bytes.", param="user"
        )
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidParameter(
            "parallel_tool_calls must be true or false.", param="parallel_tool_calls"
        )
    messages = _check_messages(body.get("messages"))

    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidParameter("stream must be true or false.", param="stream")
    include_usage = False
    stream_options = body.get("stream_options")
    if stream_options is not None:
        if not stream:
            raise InvalidParameter(
                "stream_options is only allowed when stream is true.", param="stream_options"
            )
        # null is unset here too (an SDK's include_obfuscation=None): only a value asks.
        if not isinstance(stream_options, dict) or {
            name for name, value in stream_options.items() if value is not None
        } - {"include_usage"}:
            raise InvalidParameter(
                'stream_options must be {"include_usage": true|false}.', param="stream_options"
            )
        asked = stream_options.get("include_usage")
        if asked is not None and not isinstance(asked, bool):
            raise InvalidParameter(
                "stream_options.include_usage must be true or false.", param="stream_options"
            )
        include_usage = bool(asked)

    # The mode the call runs in decides the thinking-mode rules (tool_choice, logprobs).
    thinking = _check_thinking(body.get("thinking"))
    cap = max_tokens_cap
    params = {k: v for k, v in body.items() if k in param_rules.KNOWN}
    alias = body.get("max_completion_tokens")
    if alias is not None:
        if params.get("max_tokens") is not None and params["max_tokens"] != alias:
            raise InvalidParameter(
                "max_completion_tokens is another name for max_tokens; send one of them, or "
                "the same value in both.",
                param="max_completion_tokens",
            )
        params["max_tokens"] = alias
    try:
        checked = param_rules.check_params(
            params,
            model,
            max_tokens_cap=cap,
            thinking=thinking,
        )
    except InvalidParameter as error:
        if error.param == "max_tokens" and alias is not None and body.get("max_tokens") is None:
            # Named as the client sent it: its SDK points at the field it set.
            raise type(error)(
                error.message.replace("max_tokens", "max_completion_tokens"),
                param="max_completion_tokens",
                **error.extra,
            ) from None
        raise
    max_tokens = checked.get("max_tokens")
    max_tokens_asked = max_tokens is not None
    if max_tokens is None:
        max_tokens = min(model.default_max_tokens, model.max_output_tokens)
        if cap is not None:
            max_tokens = min(max_tokens, cap)
        checked["max_tokens"] = max_tokens

    effort = body.get("reasoning_effort")
    if effort is not None:
        if not isinstance(effort, str) or effort not in REASONING_EFFORTS:
            raise InvalidParameter(
                "reasoning_effort must be one of " + ", ".join(sorted(REASONING_EFFORTS)) + ".",
                param="reasoning_effort",
            )
        checked["reasoning_effort"] = effort
    user_id = body.get("user_id")
    if user_id is not None:
        if (
            not isinstance(user_id, str)
            or not USER_ID.match(user_id)
            or len(user_id.encode()) > 512
        ):
            raise InvalidParameter(
                "user_id must match [A-Za-z0-9_-] and be at most 512 bytes.", param="user_id"
            )
        checked["user_id"] = user_id

    return ChatRequest(
        model=model.name,
        messages=messages,
        params=checked,
        max_tokens=max_tokens,
        stream=stream,
        include_usage=include_usage,
        thinking=thinking,
        logprobs=bool(checked.get("logprobs")),
        max_tokens_asked=max_tokens_asked,
    )


def _check_thinking(thinking: Any) -> bool | None:
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "disabled") or set(thinking) != {"type"}:
        raise InvalidParameter(
            'thinking must be {"type": "enabled"} or {"type": "disabled"}.', param="thinking"
        )
    return kind == "enabled"


def _string(message: Mapping[str, Any], name: str, where: str, *, required: bool) -> str | None:
    value = message.get(name)
    if value is None:
        if required:
            raise InvalidParameter(f"{where}.{name} is required.", param="messages")
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"{where}.{name} must be a string.", param="messages")
    return value


def _content(message: Mapping[str, Any], where: str, *, required: bool) -> str | None:
    """A message's content: a string, or (as DeepSeek takes since V4.1, and OpenAI's clients
    send) a list of text parts, sent upstream joined into the string the reference advises."""
    value = message.get("content")
    if not isinstance(value, list):
        return _string(message, "content", where, required=required)
    texts: list[str] = []
    for j, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind != "text":
            raise InvalidParameter(
                f"{where}.content[{j}] must be a text part "
                '({"type": "text", "text": "..."}): images and files are not accepted here.',
                param="messages",
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidParameter(f"{where}.content[{j}].text must be a string.", param="messages")
        texts.append(text)
    return "".join(texts)


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise InvalidParameter("messages is required.", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidParameter("messages must be a non-empty list.", param="messages")
    clean: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidParameter(f"{where} must be an object.", param="messages")
        role = message.get("role")
        if role not in ROLES:
            raise InvalidParameter(
                f"{where}.role must be one of system, user, assistant, tool.", param="messages"
            )
        entry: dict[str, Any] = {"role": role}
        name = _string(message, "name", where, required=False)
        if name is not None:
            entry["name"] = name
        if role in ("system", "user"):
            entry["content"] = _content(message, where, required=True)
        elif role == "tool":
            entry["content"] = _content(message, where, required=True)
            call_id = _string(message, "tool_call_id", where, required=True)
            if not call_id:
                raise InvalidParameter(f"{where}.tool_call_id is required.", param="messages")
            entry["tool_call_id"] = call_id
        else:
            if message.get("prefix"):
                raise InvalidParameter(
                    f"{where}.prefix: chat prefix completion is a beta feature this API does "
                    "not offer.",
                    param="messages",
                )
            content = _content(message, where, required=False)
            tool_calls = check_tool_calls(message.get("tool_calls"), where)
            if content is None and not tool_calls:
                raise InvalidParameter(
                    f"{where}: content or tool_calls must be set.", param="messages"
                )
            entry["content"] = content
            if tool_calls:
                entry["tool_calls"] = tool_calls
            reasoning = _string(message, "reasoning_content", where, required=False)
            if reasoning is not None:
                entry["reasoning_content"] = reasoning
        clean.append(entry)
    _check_tool_answers(clean)
    return clean


def _check_tool_answers(messages: list[dict[str, Any]]) -> None:
    """Tool messages answer the tool calls of the assistant message right before them, one
    for each call, as DeepSeek requires (it refuses anything else with a 400 that we would
    only hear after admitting the call and writing its ledger row)."""
    # The tool calls of the assistant message the tool messages since it answer (id → where
    # it is), and those not answered yet; None when no assistant tool calls are being answered.
    calls: dict[str, str] | None = None
    unanswered: dict[str, str] = {}
    for i, message in enumerate([*messages, None]):
        if message is not None and message["role"] == "tool":
            call_id = message["tool_call_id"]
            if calls is None:
                raise InvalidParameter(
                    f"messages[{i}]: a tool message must follow an assistant message with "
                    "tool_calls (or the tool messages answering it).",
                    param="messages",
                )
            if call_id not in calls:
                raise InvalidParameter(
                    f"messages[{i}].tool_call_id {call_id!r} answers no tool call of the "
                    "assistant message before it.",
                    param="messages",
                )
            unanswered.pop(call_id, None)
            continue
        if unanswered:
            call_id, where = next(iter(unanswered.items()))
            raise InvalidParameter(
                f"{where}: no tool message answers the tool call {call_id!r}; each tool call "
                "needs one, right after the assistant message.",
                param="messages",
            )
        calls = None
        if message is not None and message.get("tool_calls"):
            calls = {
                call["id"]: f"messages[{i}].tool_calls[{k}]"
                for k, call in enumerate(message["tool_calls"])
            }
            unanswered = dict(calls)


def check_tool_calls(tool_calls: Any, where: str) -> list[dict[str, Any]]:
    """An assistant message's ``tool_calls`` (``where`` names the message) in the reference's
    shape, without other fields; also the rule for an imported conversation's."""
    if tool_calls is None:
        return []
    if not isinstance(tool_calls, list):
        raise InvalidParameter(f"{where}.tool_calls must be a list.", param="messages")
    clean = []
    for j, call in enumerate(tool_calls):
        at = f"{where}.tool_calls[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or call.get("type") not in (None, "function")
            or not isinstance(call.get("id"), str)
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
            or not param_rules.TOOL_NAME.match(function["name"])
            or not isinstance(function.get("arguments"), str)
        ):
            raise InvalidParameter(
                f'{at} must be {{"id": str, "type": "function", "function": '
                '{"name": str, "arguments": str}}.',
                param="messages",
            )
        clean.append(
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": function["name"], "arguments": function["arguments"]},
            }
        )
    return clean


# --- responses -----------------------------------------------------------------------------


def fingerprint_of(model: ModelConfig) -> str:
    """32 hex characters, like DeepSeek's; changes when the admin re-points the model."""
    seed = f"{model.name}:{model.upstream_model}:{model.thinking}"
    return hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()


def estimated_usage(
    prompt_tokens: int, completion_tokens: int, reasoning_tokens: int | None = None
) -> dict[str, Any]:
    """A usage object in DeepSeek's shape for when the upstream sent none (rare); with
    ``reasoning_tokens`` (thinking mode) its ``completion_tokens_details`` too, as DeepSeek's."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    if reasoning_tokens is not None:
        usage["completion_tokens_details"] = {
            "reasoning_tokens": min(reasoning_tokens, completion_tokens)
        }
    usage["prompt_cache_hit_tokens"] = 0
    usage["prompt_cache_miss_tokens"] = prompt_tokens
    return usage


def completion_body(
    result: ChatResult,
    *,
    model_name: str,
    fingerprint: str,
    thinking: bool,
    logprobs: bool,
    usage: dict[str, Any],
) -> bytes:
    """A non-streaming ``chat.completion`` object (§4)."""
    message: dict[str, Any] = {"role": "assistant", "content": result.text}
    if thinking:
        message["reasoning_content"] = result.reasoning
    if result.tool_calls:
        message["tool_calls"] = [
            {
                "index": call.index,
                "id": call.id,
                "type": call.type,
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in result.tool_calls
        ]
    lp: dict[str, Any] | None = None
    if logprobs:
        lp = {"content": result.logprobs_content}
        if thinking:
            lp["reasoning_content"] = result.logprobs_reasoning
    body = {
        "id": str(uuid.uuid4()),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [
            {"index": 0, "message": message, "logprobs": lp, "finish_reason": result.finish_reason}
        ],
        "usage": usage,
        "system_fingerprint": fingerprint,
    }
    return dumps(body).encode()


class ChunkWriter:
    """The ``data:`` events of one stream (§5). The constant head is rendered once."""

    __slots__ = ("_head", "_pending_usage", "_tail", "thinking")

    def __init__(
        self, *, model_name: str, fingerprint: str, thinking: bool, include_usage: bool
    ) -> None:
        self.thinking = thinking
        self._head = (
            'data: {"id":"'
            + str(uuid.uuid4())
            + '","object":"chat.completion.chunk","created":'
            + str(int(time.time()))
            + ',"model":'
            + dumps(model_name)
            + ',"system_fingerprint":'
            + dumps(fingerprint)
            + ',"choices":[{"index":0,"delta":'
        )
        # Usage on earlier chunks: null with include_usage, absent without (§5.4).
        self._pending_usage = ',"usage":null' if include_usage else ""
        self._tail = ',"logprobs":null,"finish_reason":null}]' + self._pending_usage + "}\n\n"

    def _chunk(self, delta: str, logprobs: str | None = None) -> bytes:
        if logprobs is None:
            return (self._head + delta + self._tail).encode()
        return (
            self._head
            + delta
            + ',"logprobs":'
            + logprobs
            + ',"finish_reason":null}]'
            + self._pending_usage
            + "}\n\n"
        ).encode()

    def role(self) -> bytes:
        if self.thinking:
            return self._chunk('{"role":"assistant","content":null,"reasoning_content":""}')
        return self._chunk('{"role":"assistant","content":""}')

    def reasoning(self, text: str, logprobs: list[dict[str, Any]] | None = None) -> bytes:
        lp = None
        if logprobs is not None:
            lp = '{"content":null,"reasoning_content":' + dumps(logprobs) + "}"
        return self._chunk('{"content":null,"reasoning_content":' + dumps(text) + "}", lp)

    def content(self, text: str, logprobs: list[dict[str, Any]] | None = None) -> bytes:
        suffix = ',"reasoning_content":null}' if self.thinking else "}"
        lp = None if logprobs is None else '{"content":' + dumps(logprobs) + "}"
        return self._chunk('{"content":' + dumps(text) + suffix, lp)

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        call: dict[str, Any] = {"index": delta.index}
        if delta.id is not None:
            call["id"] = delta.id
            call["type"] = "function"
            call["function"] = {"name": delta.name or "", "arguments": delta.arguments_fragment}
        else:
            call["function"] = {"arguments": delta.arguments_fragment}
        return self._chunk('{"tool_calls":[' + dumps(call) + "]}")

    def logprobs_only(
        self, content: list[dict[str, Any]], reasoning: list[dict[str, Any]]
    ) -> bytes:
        lp: dict[str, Any] = {"content": content or None}
        if reasoning:
            lp["reasoning_content"] = reasoning
        return self._chunk("{}", dumps(lp))

    def finish(self, reason: str | None, usage: dict[str, Any] | None) -> bytes:
        delta = '{"content":"","reasoning_content":null}' if self.thinking else '{"content":""}'
        usage_part = ',"usage":' + dumps(usage) if usage is not None else self._pending_usage
        return (
            self._head
            + delta
            + ',"logprobs":null,"finish_reason":'
            + dumps(reason or "stop")
            + "}]"
            + usage_part
            + "}\n\n"
        ).encode()


def error_event(envelope: ErrorEnvelope) -> bytes:
    """A failure after the 200 went out: an error event, and the stream ends without [DONE]."""
    return b"data: " + dumps(envelope).encode() + b"\n\n"


# --- other endpoints ---------------------------------------------------------------------


def model_object(name: str) -> dict[str, str]:
    """One model as ``GET /models`` lists it and ``GET /models/{id}`` answers it (§8.1)."""
    return {"id": name, "object": "model", "owned_by": "deepseek"}


def models_body(names: list[str]) -> bytes:
    return dumps({"object": "list", "data": [model_object(name) for name in names]}).encode()


def model_body(name: str) -> bytes:
    return dumps(model_object(name)).encode()


#: The balance of a user with no token limit: the largest a limit can be (PostgreSQL's
#: ``bigint``), so no limited user's balance is ever larger, and any client can parse it.
UNLIMITED_BALANCE_TOKENS = 2**63 - 1


def balance_body(*, available: bool, remaining_tokens: int | None) -> bytes:
    """DeepSeek's balance shape, counted in tokens (currency ``TOKENS``).

    Always one entry, as DeepSeek always gives: clients read ``balance_infos[0]``. With no
    token limit (``remaining_tokens`` None) its amounts are :data:`UNLIMITED_BALANCE_TOKENS`,
    a number every client parses (``"Infinity"`` is zero to PHP's and Ruby's conversions).
    """
    tokens = UNLIMITED_BALANCE_TOKENS if remaining_tokens is None else max(0, remaining_tokens)
    amount = f"{tokens}.00"
    info = {
        "currency": "TOKENS",
        "total_balance": amount,
        "granted_balance": amount,
        "topped_up_balance": "0.00",
    }
    return dumps({"is_available": available, "balance_infos": [info]}).encode()
