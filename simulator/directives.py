"""Test directives: `[[sim: key=value ...]]` in the last user message or an X-Simulator header.

They let a test ask the simulator for a fault, a scripted reply or a pacing change without a
side channel. Directives are removed from every message before token counting and reply
generation, so the "model" never sees them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from simulator.errors import bad_request

DIRECTIVE_RE = re.compile(r"\[\[sim:((?:\\.|[^\\\]]|\](?!\]))*)\]\]", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "0": "\x00", "\\": "\\", "]": "]", "[": "[", ";": ";"}
_SEPARATORS = " \t\r\n;"

FAULT_STATUSES = ("400", "401", "402", "422", "429", "500", "503")
FINISH_REASONS = ("stop", "length", "content_filter", "insufficient_system_resource")


@dataclass
class Directives:
    """What a request asked of the simulator; None means "use the configured behaviour"."""

    say: str | None = None
    fault: int | None = None
    fault_times: int | None = None
    retry_after: int | None = None
    fault_after: float | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    keepalive: bool = False
    finish: str | None = None
    queue: float | None = None
    tokens_per_s: float | None = None
    first_token_latency: float | None = None
    tool: str | None = None
    json: str | None = None
    usage: str | None = None
    logprobs: str | None = None

    def merge(self, other: Directives) -> None:
        """Copy every field `other` sets; later sources win."""
        default = Directives()
        for field in fields(self):
            value = getattr(other, field.name)
            if value != getattr(default, field.name):
                setattr(self, field.name, value)


def strip_directives(text: str) -> str:
    """Return `text` without any `[[sim: ...]]` block, trimmed."""
    if "[[sim:" not in text:
        return text
    return DIRECTIVE_RE.sub("", text).strip()


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), value)


def _pairs(source: str) -> list[tuple[str, str]]:
    """Split `a=1 b=2; say=rest of it` into pairs; `say` takes everything after it."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(source)
    while i < n:
        while i < n and source[i] in _SEPARATORS:
            i += 1
        if i >= n:
            break
        eq = source.find("=", i)
        if eq == -1:
            raise bad_request(f"simulator: directive {source[i:].strip()!r} needs key=value")
        key = source[i:eq].strip()
        if key == "say":
            pairs.append((key, unescape(source[eq + 1 :])))
            break
        j = eq + 1
        while j < n and source[j] not in _SEPARATORS:
            j += 1
        pairs.append((key, source[eq + 1 : j]))
        i = j
    return pairs


def _number(key: str, value: str, *, integer: bool) -> float:
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        raise bad_request(f"simulator: {key} needs a number, got {value!r}") from None
    if number < 0:
        raise bad_request(f"simulator: {key} cannot be negative")
    return number


def parse_directives(source: str) -> Directives:
    """Parse the inside of one directive block (or an X-Simulator header value)."""
    found = Directives()
    for key, value in _pairs(source):
        if key == "say":
            found.say = value
        elif key == "fault":
            normalized = "400" if value == "context_length" else value
            if normalized not in FAULT_STATUSES:
                raise bad_request(f"simulator: fault must be one of {', '.join(FAULT_STATUSES)}")
            found.fault = int(normalized)
        elif key in ("fault_times", "retry_after", "drop_after", "stall_after"):
            setattr(found, key, int(_number(key, value, integer=True)))
        elif key in ("queue", "tokens_per_s", "first_token_latency", "fault_after"):
            setattr(found, key, _number(key, value, integer=False))
        elif key == "keepalive":
            found.keepalive = value not in ("0", "false", "no", "")
        elif key == "finish":
            if value not in FINISH_REASONS:
                raise bad_request(f"simulator: finish must be one of {', '.join(FINISH_REASONS)}")
            found.finish = value
        elif key == "tool":
            found.tool = value
        elif key == "json":
            if value != "blank":
                raise bad_request("simulator: json only accepts json=blank")
            found.json = value
        elif key == "usage":
            if value not in ("finish", "trailing", "none"):
                raise bad_request("simulator: usage must be finish, trailing or none")
            found.usage = value
        elif key == "logprobs":
            if value not in ("none", "empty"):
                raise bad_request("simulator: logprobs must be none or empty")
            found.logprobs = value
        else:
            raise bad_request(f"simulator: unknown directive {key!r}")
    return found


def directives_in(text: str) -> tuple[Directives, str]:
    """All directives in `text` merged in order, plus the marker used to count fault_times."""
    found = Directives()
    blocks = [m.group(1).strip() for m in DIRECTIVE_RE.finditer(text)]
    for block in blocks:
        found.merge(parse_directives(block))
    return found, " ".join(blocks)


def collect_directives(last_user_text: str | None, header: str | None) -> tuple[Directives, str]:
    """Directives from the last user message, then the header (the header wins on conflicts)."""
    found, marker = directives_in(last_user_text or "")
    if header:
        found.merge(parse_directives(header))
        marker = f"{marker} | {header.strip()}" if marker else header.strip()
    return found, marker
