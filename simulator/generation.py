"""Deterministic replies: reasoning, markdown answers, JSON objects and tool calls.

Everything is derived from a seeded RNG keyed by the conversation, so the same request gives
the same reply on every run while different questions get visibly different answers.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import string
from dataclasses import dataclass, field
from typing import Any

from simulator.directives import Directives
from simulator.tokens import split_pieces
from simulator.validation import ChatRequest, Message, Tool

_STOPWORDS = frozenset(
    [
        "about",
        "above",
        "after",
        "again",
        "also",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "could",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "from",
        "further",
        "have",
        "having",
        "here",
        "hers",
        "herself",
        "himself",
        "into",
        "itself",
        "just",
        "more",
        "most",
        "myself",
        "other",
        "ours",
        "ourselves",
        "over",
        "same",
        "should",
        "some",
        "such",
        "than",
        "that",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "under",
        "until",
        "very",
        "what",
        "when",
        "where",
        "which",
        "while",
        "whom",
        "with",
        "would",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "please",
        "tell",
        "explain",
        "show",
        "give",
        "write",
        "make",
        "want",
        "need",
        "like",
        "know",
        "can't",
        "don't",
        "it's",
        "i'm",
        "what's",
        "how's",
    ]
)

_LANGUAGES = {
    "python": "python",
    "django": "python",
    "sql": "sql",
    "query": "sql",
    "postgres": "sql",
    "bash": "bash",
    "shell": "bash",
    "deploy": "bash",
    "javascript": "javascript",
    "typescript": "typescript",
    "rust": "rust",
    "go": "go",
}

_CODE: dict[str, str] = {
    "python": 'def summarize_{slug}(items: list[str]) -> dict[str, int]:\n    """Count how often each {word} appears."""\n    counts: dict[str, int] = {{}}\n    for item in items:\n        counts[item] = counts.get(item, 0) + 1\n    return counts\n',
    "sql": "SELECT {slug}, COUNT(*) AS total\nFROM events\nWHERE created_at >= now() - interval '7 days'\nGROUP BY {slug}\nORDER BY total DESC\nLIMIT 10;\n",
    "bash": '#!/usr/bin/env bash\nset -euo pipefail\n\necho "Checking {word}..."\nfor host in web-1 web-2; do\n  ssh "$host" systemctl status {slug} --no-pager\ndone\n',
    "javascript": "export function summarize{Word}(items) {{\n  const counts = new Map();\n  for (const item of items) {{\n    counts.set(item, (counts.get(item) ?? 0) + 1);\n  }}\n  return Object.fromEntries(counts);\n}}\n",
    "typescript": "export function summarize{Word}(items: string[]): Record<string, number> {{\n  const counts: Record<string, number> = {{}};\n  for (const item of items) counts[item] = (counts[item] ?? 0) + 1;\n  return counts;\n}}\n",
    "rust": "fn summarize_{slug}(items: &[&str]) -> std::collections::HashMap<&str, usize> {{\n    let mut counts = std::collections::HashMap::new();\n    for item in items {{\n        *counts.entry(*item).or_insert(0) += 1;\n    }}\n    counts\n}}\n",
    "go": "func Summarize{Word}(items []string) map[string]int {{\n\tcounts := make(map[string]int)\n\tfor _, item := range items {{\n\t\tcounts[item]++\n\t}}\n\treturn counts\n}}\n",
}

_OPENERS = (
    "Good question about **{topic}**. Here is a structured overview.",
    "Let's break down **{topic}** step by step.",
    "Here is a practical take on **{topic}**, with an example you can adapt.",
    "Short answer: it depends on your constraints, but **{topic}** usually comes down to a few ideas.",
)
_POINTS = (
    "Start with the simplest version of {word} that works, then measure.",
    "Keep the {word} logic in one place so it is easy to test.",
    "Write down the assumptions about {word} before changing anything.",
    "Prefer small, reversible steps when touching {word} in production.",
    "Automate the boring parts of {word}; review the risky ones by hand.",
    "Log enough context around {word} to debug it later.",
    "Agree on naming for {word} early; renames get expensive.",
)
_ALTERNATIVE_TOKENS = (
    " the",
    " a",
    ",",
    ".",
    " and",
    "\n",
    " to",
    " of",
    " is",
    " in",
    " it",
    " we",
    " that",
    " for",
    " on",
    " with",
    " as",
    " this",
    " be",
    " or",
    " not",
    ":",
)
_CLOSERS = (
    "Let me know if you want me to go deeper on any of these points.",
    "If you share more details about your setup, I can tailor this further.",
    "Hope this helps — happy to review a concrete example.",
)


@dataclass
class PlannedToolCall:
    index: int
    id: str
    name: str
    arguments: str
    argument_pieces: list[str] = field(default_factory=list)


@dataclass
class Reply:
    """One generated completion, already cut to the token budget."""

    reasoning: list[str]
    content: list[str]
    tool_calls: list[PlannedToolCall]
    finish_reason: str
    tool_tokens: int = 0

    @property
    def reasoning_text(self) -> str:
        return "".join(self.reasoning)

    @property
    def content_text(self) -> str:
        return "".join(self.content)

    @property
    def completion_tokens(self) -> int:
        return len(self.reasoning) + len(self.content) + self.tool_tokens


def conversation_rng(seed: int, request: ChatRequest) -> random.Random:
    """An RNG keyed by the seed and the visible conversation (stable across processes)."""
    digest = hashlib.sha256(str(seed).encode())
    for message in request.messages:
        digest.update(message.role.encode() + b"\0" + message.text.encode() + b"\0")
    return random.Random(int.from_bytes(digest.digest()[:8], "big"))


def _keywords(text: str) -> list[str]:
    words = re.findall(r"[A-Za-z][A-Za-z0-9'_-]{3,}", text)
    seen: list[str] = []
    for word in words:
        lowered = word.lower()
        if lowered not in _STOPWORDS and lowered not in seen:
            seen.append(lowered)
    return seen


def _topic(text: str) -> tuple[str, str]:
    words = _keywords(text)
    if words:
        return " ".join(words[:3]), words[0]
    stripped = " ".join(text.split())
    if stripped:
        return stripped[:24], "item"
    return "your question", "item"


def _last_user_text(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.text
    return ""


def _bullets(rng: random.Random, word: str, numbered: bool) -> str:
    picks = rng.sample(_POINTS, k=rng.randint(3, 4))
    lines = []
    for i, point in enumerate(picks, start=1):
        marker = f"{i}." if numbered else "-"
        lines.append(f"{marker} {point.format(word=word)}")
    return "\n".join(lines)


def _code_block(rng: random.Random, text: str, word: str) -> str:
    lowered = text.lower()
    language = next(
        (lang for key, lang in _LANGUAGES.items() if re.search(rf"\b{key}\b", lowered)),
        rng.choice(("python", "sql", "bash", "typescript")),
    )
    slug = re.sub(r"[^a-z0-9]+", "_", word.lower()).strip("_") or "item"
    camel = "".join(part.capitalize() for part in slug.split("_"))
    body = _CODE[language].format(slug=slug, word=word, Word=camel)
    return f"```{language}\n{body}```"


def _table(rng: random.Random, word: str) -> str:
    rows = [
        ("Simple", "low", "small teams"),
        ("Balanced", "medium", "most projects"),
        ("Thorough", "high", "regulated environments"),
    ]
    rng.shuffle(rows)
    lines = [f"| Approach to {word} | Effort | Best for |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    return "\n".join(lines)


def _math(rng: random.Random) -> str:
    n = rng.randint(3, 9)
    return (
        f"If each step takes time $t$, running $n = {n}$ steps costs $T = n \\cdot t$. "
        "The average over $n$ samples is\n\n"
        "$$\\bar{x} = \\frac{1}{n} \\sum_{i=1}^{n} x_i$$"
    )


def _markdown_answer(rng: random.Random, text: str) -> str:
    topic, word = _topic(text)
    parts = [rng.choice(_OPENERS).format(topic=topic)]
    blocks = ["bullets", "numbered", "code", "table", "math", "quote"]
    chosen = rng.sample(blocks, k=rng.randint(2, 3))
    for block in chosen:
        if block == "bullets":
            parts.append(f"### Key points\n\n{_bullets(rng, word, numbered=False)}")
        elif block == "numbered":
            parts.append(f"### Steps\n\n{_bullets(rng, word, numbered=True)}")
        elif block == "code":
            parts.append(f"A minimal example:\n\n{_code_block(rng, text, word)}")
        elif block == "table":
            parts.append(_table(rng, word))
        elif block == "math":
            parts.append(_math(rng))
        else:
            parts.append(f"> Tip: treat *{word}* as something you can measure, not guess.")
    parts.append(rng.choice(_CLOSERS))
    return "\n\n".join(parts)


def _reasoning(rng: random.Random, text: str, plan: str) -> str:
    topic, word = _topic(text)
    steps = rng.sample(
        (
            f"First I should make sure I understand what they mean by {word}.",
            "I should keep the answer concise but concrete.",
            "An example would make this clearer.",
            "I should mention the trade-offs, not just one option.",
            "Let me double-check the details before answering.",
        ),
        k=3,
    )
    return f"The user is asking about {topic}. " + " ".join(steps) + f" {plan}"


def _value_for(schema: Any, name: str, text: str, rng: random.Random, depth: int = 0) -> Any:
    """A value that satisfies `schema` (the subset strict tools allow), seeded by the text."""
    if not isinstance(schema, dict):
        return _string_for(name, text, {})
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list) and options:
            return _value_for(options[0], name, text, rng, depth)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        result: dict[str, Any] = {}
        for key, sub in props.items():
            if key in required or depth == 0:
                result[key] = _value_for(sub, key, text, rng, depth + 1)
        return result
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1)
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        return [
            _value_for(schema.get("items", {}), name, text, rng, depth + 1) for _ in range(count)
        ]
    if kind in ("integer", "number"):
        return _number_for(schema, name, text, rng, integer=kind == "integer")
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string_for(name, text, schema)


def _number_for(
    schema: dict[str, Any], name: str, text: str, rng: random.Random, *, integer: bool
) -> int | float:
    # Exclusive bounds are tightened to the nearest integer inside them.
    low = float(schema.get("minimum", 1))
    if "exclusiveMinimum" in schema:
        low = math.floor(float(schema["exclusiveMinimum"])) + 1
    high = float(schema.get("maximum", max(low, 0) + 10))
    if "exclusiveMaximum" in schema:
        high = math.ceil(float(schema["exclusiveMaximum"])) - 1
    # A number right after the property's name ("limit 5") beats any other number.
    near = re.findall(rf"{re.escape(name)}\W{{0,3}}(\d{{1,6}})\b", text, re.IGNORECASE)
    numbers = [int(n) for n in near + re.findall(r"(?<![-\w])\d{1,6}\b", text)]
    value = next((n for n in numbers if low <= n <= high), None)
    if value is None:
        value = rng.randint(math.ceil(low), max(math.ceil(low), math.floor(high)))
    return value if integer else float(value)


def _string_for(name: str, text: str, schema: dict[str, Any]) -> str:
    quoted = re.findall(r"[\"“']([^\"”']{1,80})[\"”']", text)
    codes = re.findall(r"\b[A-Z][A-Z0-9]*-\d+\b", text)
    capitalised = re.findall(r"(?<=[a-z,;:] )[A-Z][a-zA-Z]+(?: [A-Z][a-zA-Z]+)*", text)
    candidates = quoted + codes + capitalised
    value = candidates[0] if candidates else (" ".join(text.split())[:40] or name)
    minimum = int(schema.get("minLength", 0))
    maximum = int(schema.get("maxLength", 10_000))
    if len(value) < minimum:
        value = value + "x" * (minimum - len(value))
    return value[:maximum]


def _tools_to_call(request: ChatRequest, directives: Directives) -> list[Tool]:
    if not request.tools or request.tool_choice == "none":
        return []
    if request.messages[-1].role == "tool" and request.tool_choice not in ("named", "required"):
        return []  # answered: the model goes on with the results, unless a call is forced
    by_name = {tool.name: tool for tool in request.tools}
    if directives.tool is not None:
        return [by_name[directives.tool]] if directives.tool in by_name else []
    if request.tool_choice == "named" and request.tool_choice_name in by_name:
        return [by_name[request.tool_choice_name]]
    text = _last_user_text(request).lower()
    mentioned: list[tuple[int, Tool]] = []
    for tool in request.tools:
        for form in (tool.name.lower(), tool.name.lower().replace("_", " ")):
            position = text.find(form)
            if position != -1:
                mentioned.append((position, tool))
                break
    if mentioned:
        return [tool for _, tool in sorted(mentioned, key=lambda pair: pair[0])]
    if request.tool_choice == "required":
        return [request.tools[0]]
    return []


def _call_id(rng: random.Random, index: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return f"call_{index:02d}_" + "".join(rng.choice(alphabet) for _ in range(24))


def _tool_result_answer(rng: random.Random, request: ChatRequest) -> str:
    # The trailing tool messages answer the latest assistant tool-call turn.
    results: list[Message] = []
    for message in reversed(request.messages):
        if message.role != "tool":
            break
        results.append(message)
    results.reverse()
    names = {call.id: call.name for m in request.messages for call in m.tool_calls}
    parts: list[str] = []
    for result in results:
        name = names.get(result.tool_call_id or "", "the tool")
        try:
            parsed = json.loads(result.text)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed:
            rows = "\n".join(
                f"| {key} | {json.dumps(value, ensure_ascii=False)} |"
                for key, value in parsed.items()
            )
            parts.append(
                f"Here is what `{name}` returned:\n\n| Field | Value |\n| --- | --- |\n{rows}"
            )
        else:
            parts.append(f"`{name}` returned:\n\n> {result.text.strip() or '(empty result)'}")
    parts.append(
        rng.choice(
            (
                "In short: the lookup succeeded and the details are above.",
                "Based on this result, everything needed to answer is above.",
                "That answers the question; tell me if you need a follow-up call.",
            )
        )
    )
    return "\n\n".join(parts)


def _json_answer(rng: random.Random, text: str) -> str:
    topic, word = _topic(text)
    payload = {
        "topic": topic,
        "summary": f"A short structured answer about {topic}.",
        "points": [point.format(word=word) for point in rng.sample(_POINTS, k=3)],
        "confidence": round(rng.uniform(0.6, 0.95), 2),
    }
    return json.dumps(payload, indent=2, ensure_ascii=False)


def _prefix_continuation(rng: random.Random, prefix: str, text: str) -> str:
    # An unclosed code fence in the prefix means the model is expected to write code.
    if prefix.count("```") % 2 == 1:
        _, word = _topic(text)
        code = _code_block(rng, text, word)
        body = code.split("\n", 1)[1]
        return body
    return " " + _markdown_answer(rng, text)


def _apply_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    cut = min((i for s in stop if s and (i := text.find(s)) != -1), default=-1)
    if cut == -1:
        return text, False
    return text[:cut], True


def generate_reply(request: ChatRequest, directives: Directives, rng: random.Random) -> Reply:
    """Plan the whole completion, then cut it at max_tokens like the real model would stop."""
    user_text = _last_user_text(request)
    calls = _tools_to_call(request, directives)
    last_is_tool = request.messages[-1].role == "tool"
    prefix = request.prefix_text

    if directives.say is not None:
        content = directives.say
    elif calls:
        content = ""
    elif directives.json == "blank" and request.json_mode:
        # JSON mode's failure case: upstream replaces invalid output with whitespace.
        content = " " * 16
    elif request.json_mode:
        content = _json_answer(rng, user_text)
    elif last_is_tool:
        content = _tool_result_answer(rng, request)
    elif prefix is not None:
        content = _prefix_continuation(rng, prefix, user_text)
    else:
        content = _markdown_answer(rng, user_text)

    content, hit_stop = _apply_stop(content, request.stop)

    reasoning = ""
    if request.thinking:
        if calls:
            plan = f"I should call {', '.join(t.name for t in calls)} to get the data first."
        elif last_is_tool:
            plan = "The tool result is in; I should summarise it for the user."
        elif request.json_mode:
            plan = "The answer must be a JSON object only."
        else:
            plan = "Let me write the answer with a clear structure."
        reasoning = _reasoning(rng, user_text or content, plan)

    budget = request.max_tokens
    reasoning_pieces = split_pieces(reasoning)[:budget]
    budget -= len(reasoning_pieces)
    content_pieces_all = split_pieces(content)
    finish = "tool_calls" if calls else "stop"

    if directives.finish and directives.finish != "stop" and directives.say is None:
        # A forced early finish cuts the answer roughly in half, as a real cut-off would.
        content_pieces_all = content_pieces_all[: max(1, len(content_pieces_all) // 2)]
    content_pieces = content_pieces_all[:budget]
    truncated = len(content_pieces) < len(content_pieces_all) or len(reasoning_pieces) < len(
        split_pieces(reasoning)
    )
    budget -= len(content_pieces)

    planned: list[PlannedToolCall] = []
    tool_tokens = 0
    for index, tool in enumerate(calls):
        if budget <= 0:
            truncated = True
            break
        arguments = json.dumps(
            _value_for(tool.parameters, tool.name, user_text, rng), ensure_ascii=False
        )
        pieces = split_pieces(arguments)
        if len(pieces) + 1 > budget:
            pieces = pieces[: max(budget - 1, 0)]
            truncated = True
        budget -= len(pieces) + 1
        # One token for the call header (id, name) plus the argument pieces.
        tool_tokens += len(pieces) + 1
        planned.append(
            PlannedToolCall(index, _call_id(rng, index), tool.name, "".join(pieces), pieces)
        )

    if truncated:
        finish = "length"
    elif directives.finish:
        finish = directives.finish
    elif hit_stop:
        finish = "stop"
    return Reply(reasoning_pieces, content_pieces, planned, finish, tool_tokens)


def token_logprobs(pieces: list[str], top: int, rng: random.Random) -> list[dict[str, Any]]:
    """Logprob entries shaped like the v4-flash fixture: token, logprob, bytes, top_logprobs."""
    entries: list[dict[str, Any]] = []
    for piece in pieces:
        logprob = -round(rng.expovariate(6.0), 6)
        alternatives = [{"token": piece, "logprob": logprob, "bytes": list(piece.encode())}]
        variants = [piece.upper(), piece.lower() + "s", *_ALTERNATIVE_TOKENS]
        extra = logprob
        for variant in variants:
            if len(alternatives) >= top:
                break
            if variant == piece or any(a["token"] == variant for a in alternatives):
                continue
            extra = round(extra - rng.uniform(0.5, 3.0), 6)
            alternatives.append(
                {"token": variant, "logprob": extra, "bytes": list(variant.encode())}
            )
        entries.append(
            {
                "token": piece,
                "logprob": logprob,
                "bytes": list(piece.encode()),
                "top_logprobs": alternatives[:top],
            }
        )
    return entries
