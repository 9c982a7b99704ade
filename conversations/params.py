"""Parameter rules of the API reference, checked against a model's capabilities.

One place for every path (websocket, API): a wrong value raises :class:`InvalidParameter`
naming the parameter, and nothing is sent upstream.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from conversations import text
from conversations.errors import InvalidParameter, JSONPromptMissing
from conversations.models import Conversation, ModelConfig

TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")  # \Z: "$" would let a final "\n" pass
MAX_TOOLS = 128
MAX_STOP = 16
KNOWN = (
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "max_tokens",
    "response_format",
    "logprobs",
    "top_logprobs",
    "tools",
    "tool_choice",
    "stop",
)


def _number(
    params: Mapping[str, Any], name: str, low: float, high: float, *, low_open: bool = False
) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidParameter(f"{name} must be a number.", param=name)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidParameter(f"{name} must be a finite number.", param=name)
    if value > high or value < low or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise InvalidParameter(f"{name} must be in {bracket}{low:g}, {high:g}].", param=name)
    return float(value)


def _finite_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


def _check_tools(tools: Any) -> list[dict[str, Any]]:
    """The tools as the reference spells them: each keeps only its ``type`` and ``function``
    (a field beside them, which the upstream does not read, could hold what neither its JSON
    nor jsonb can: an out-of-range number, a NUL; as a named ``tool_choice`` keeps only its
    name)."""
    if not isinstance(tools, list):
        raise InvalidParameter("tools must be a list of function definitions.", param="tools")
    if len(tools) > MAX_TOOLS:
        raise InvalidParameter(f"tools may hold at most {MAX_TOOLS} functions.", param="tools")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise InvalidParameter(f'{where}.type must be "function".', param="tools")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise InvalidParameter(f"{where}.function must be an object.", param="tools")
        name = function.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise InvalidParameter(
                f"{where}.function.name must match [A-Za-z0-9_-]{{1,64}}.", param="tools"
            )
        if name in names:
            raise InvalidParameter(
                f"{where}.function.name {name!r} is defined twice.", param="tools"
            )
        names.add(name)
        # Optional fields: null is unset, as at the top level.
        description = function.get("description")
        if description is not None and not isinstance(description, str):
            raise InvalidParameter(f"{where}.function.description must be a string.", param="tools")
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise InvalidParameter(
                f"{where}.function.parameters must be a JSON Schema object.", param="tools"
            )
        if parameters and not _finite_json(parameters):
            # 1e400 parses as infinity, which neither jsonb nor the upstream's JSON can hold.
            raise InvalidParameter(
                f"{where}.function.parameters holds a number out of range.", param="tools"
            )
        strict = function.get("strict")
        if strict is not None and not isinstance(strict, bool):
            raise InvalidParameter(f"{where}.function.strict must be true or false.", param="tools")
        unknown = set(function) - {"name", "description", "parameters", "strict"}
        if unknown:
            raise InvalidParameter(
                f"{where}.function has unknown fields: {', '.join(sorted(unknown))}.", param="tools"
            )
    return [{"type": "function", "function": tool["function"]} for tool in tools]


def going_on_with_tool_results(effective: dict[str, Any]) -> dict[str, Any]:
    """The parameters of a reply that goes on with the results of the tool calls its parent
    made: a forced ``tool_choice`` ("required" or a named function) has done its work, and
    becomes "auto", as the OpenAI Agents SDK resets it; kept, it would make the model call a
    tool again after every answer, and the reply could never be said in words."""
    if effective.get("tool_choice") == "required" or isinstance(effective.get("tool_choice"), dict):
        return {**effective, "tool_choice": "auto"}
    return effective


def _check_tool_choice(
    choice: Any, tools: list[dict[str, Any]] | None, model: ModelConfig, thinking: bool
) -> str | dict[str, Any]:
    """The tool choice as the reference spells it: a named function keeps only its name (other
    fields, which the upstream does not read, could hold what neither its JSON nor jsonb can:
    an out-of-range number, a NUL)."""
    names = {t["function"]["name"] for t in tools or []}
    if isinstance(choice, str):
        if choice not in ("none", "auto", "required"):
            raise InvalidParameter(
                'tool_choice must be "none", "auto", "required" or a named function.',
                param="tool_choice",
            )
        if choice == "required" and not names:
            raise InvalidParameter('tool_choice "required" needs tools.', param="tool_choice")
    elif isinstance(choice, dict):
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if choice.get("type") != "function" or not isinstance(name, str):
            raise InvalidParameter(
                'tool_choice must be {"type": "function", "function": {"name": ...}}.',
                param="tool_choice",
            )
        if name not in names:
            raise InvalidParameter(
                f"tool_choice names {name!r}, which is not in tools.", param="tool_choice"
            )
    else:
        raise InvalidParameter("tool_choice must be a string or an object.", param="tool_choice")
    if thinking and (choice == "required" or isinstance(choice, dict)):
        raise InvalidParameter(
            f'{model.name} in thinking mode accepts only tool_choice "none" or "auto".',
            param="tool_choice",
        )
    if isinstance(choice, str):
        return choice
    return {"type": "function", "function": {"name": choice["function"]["name"]}}


def _logprobs_allowed(model: ModelConfig, thinking: bool) -> bool:
    """In the model's own mode the registry says; in the other mode (the request switched
    thinking on or off) the reference's rule: thinking mode rejects logprobs (§3.1)."""
    if thinking == model.thinking:
        return model.supports_logprobs
    return not thinking


def check_params(
    params: Mapping[str, Any],
    model: ModelConfig,
    *,
    max_tokens_cap: int | None = None,
    thinking: bool | None = None,
) -> dict[str, Any]:
    """The validated parameters (unset ones left out), or :class:`InvalidParameter`.

    ``thinking`` is the mode the call runs in when the request chooses it (the API's
    ``thinking`` field); None: the model's own. The thinking-mode rules follow that mode."""
    if thinking is None:
        thinking = model.thinking
    if not isinstance(params, Mapping):
        raise InvalidParameter("params must be an object.", param="params")
    unknown = sorted(set(params) - set(KNOWN))
    if unknown:
        raise InvalidParameter(f"Unknown parameter: {unknown[0]}.", param=unknown[0])
    clean: dict[str, Any] = {}
    for name, low, high, low_open in [
        ("temperature", 0, 2, False),
        ("top_p", 0, 1, True),
        ("frequency_penalty", -2, 2, False),
        ("presence_penalty", -2, 2, False),
    ]:
        value = _number(params, name, low, high, low_open=low_open)
        if value is not None:
            clean[name] = value

    max_tokens = params.get("max_tokens")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
            raise InvalidParameter("max_tokens must be an integer.", param="max_tokens")
        if not 1 <= max_tokens <= model.max_output_tokens:
            # DeepSeek's own words (deepseek-api.md §11, item 5), which clients may match.
            raise InvalidParameter(
                "Invalid max_tokens value, the valid range of max_tokens is "
                f"[1, {model.max_output_tokens}]",
                param="max_tokens",
            )
        if max_tokens_cap is not None and max_tokens > max_tokens_cap:
            raise InvalidParameter(
                f"max_tokens may be at most {max_tokens_cap} under your limits.", param="max_tokens"
            )
        clean["max_tokens"] = max_tokens

    response_format = params.get("response_format")
    if response_format is not None:
        if not isinstance(response_format, dict) or set(response_format) - {"type"}:
            kind = None
        else:
            # The reference's type defaults to "text": {} and {"type": null} ask for text.
            kind = response_format.get("type")
            if kind is None:
                kind = "text"
        if kind not in ("text", "json_object"):
            raise InvalidParameter(
                'response_format must be {"type": "text"} or {"type": "json_object"}.',
                param="response_format",
            )
        if kind == "json_object" and not model.supports_json:
            raise InvalidParameter(
                f"{model.name} does not support JSON output.", param="response_format"
            )
        clean["response_format"] = {"type": kind}

    logprobs = params.get("logprobs")
    if logprobs is not None:
        if not isinstance(logprobs, bool):
            raise InvalidParameter("logprobs must be true or false.", param="logprobs")
        if logprobs and not _logprobs_allowed(model, thinking):
            mode = " in thinking mode" if thinking else ""
            raise InvalidParameter(
                f"{model.name}{mode} does not return logprobs.", param="logprobs"
            )
        clean["logprobs"] = logprobs
    top_logprobs = params.get("top_logprobs")
    if top_logprobs is not None:
        if (
            isinstance(top_logprobs, bool)
            or not isinstance(top_logprobs, int)
            or not 0 <= top_logprobs <= 20
        ):
            raise InvalidParameter(
                "top_logprobs must be an integer in [0, 20].", param="top_logprobs"
            )
        if not clean.get("logprobs"):
            raise InvalidParameter("top_logprobs needs logprobs set to true.", param="top_logprobs")
        clean["top_logprobs"] = top_logprobs

    tools = params.get("tools")
    if tools is not None:
        if not model.supports_tools:
            raise InvalidParameter(f"{model.name} does not support tools.", param="tools")
        clean["tools"] = _check_tools(tools) or None
        if clean["tools"] is None:
            del clean["tools"]
    if params.get("tool_choice") is not None:
        if not model.supports_tools:
            raise InvalidParameter(f"{model.name} does not support tools.", param="tool_choice")
        clean["tool_choice"] = _check_tool_choice(
            params["tool_choice"], clean.get("tools"), model, thinking
        )

    stop = params.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if (
            not isinstance(stop, list)
            or not all(isinstance(s, str) and s for s in stop)
            or len(stop) > MAX_STOP
        ):
            raise InvalidParameter(
                f"stop must be a string or a list of at most {MAX_STOP} non-empty strings.",
                param="stop",
            )
        clean["stop"] = stop
    return clean


# The fields of a model that :func:`check_params` reads: a change to one of them may refuse
# parameters it accepted before.
MODEL_FIELDS_CHECKED = (
    "thinking",
    "supports_tools",
    "supports_json",
    "supports_logprobs",
    "max_output_tokens",
)


def count_refused_conversations(model: ModelConfig) -> dict[str, int]:
    """How many live conversations of ``model`` keep parameters it now refuses (the model's
    capabilities or output limit changed since they were saved), by the parameter refused
    first: their next message is refused naming it, until its owner changes it in the
    conversation's settings."""
    refused: dict[str, int] = {}
    stored = (
        Conversation.objects.alive()
        .filter(model=model)
        .exclude(params={})
        .values_list("params", flat=True)
    )
    for value in stored.iterator():
        try:
            check_params(value, model)
        except InvalidParameter as error:
            name = error.param or "params"
            refused[name] = refused.get(name, 0) + 1
    return refused


def check_conversation_params(value: Any, model: ModelConfig) -> dict[str, Any]:
    """What a conversation may keep as its own parameters for ``model``: what
    :func:`check_params` accepts, as it returns it, and only if jsonb can store it (no NUL
    in its text, no number JSON has not: tools are kept as given). For writers whose
    input has not come through the chat's frame checks (the admin)."""
    clean = check_params(value, model)
    if not _finite_json(clean):
        raise InvalidParameter("params holds a number out of range.", param="params")
    text.check_parsed_json(json.dumps(clean), clean, "params")
    return clean


def check_json_prompt(params: Mapping[str, Any], texts: Iterable[str]) -> None:
    """JSON mode without the word "json" in the prompt can stream whitespace until max_tokens."""
    response_format = params.get("response_format") or {}
    if response_format.get("type") != "json_object":
        return
    if any("json" in text.lower() for text in texts):
        return
    raise JSONPromptMissing(
        'JSON mode needs the word "json" (and ideally an example of the shape) in the system '
        "prompt or the message; otherwise the model may answer with blank space.",
        param="response_format",
    )
