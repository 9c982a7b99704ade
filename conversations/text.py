"""Text that cannot be stored, refused where it enters with an error that names it.

PostgreSQL's text (and jsonb) cannot hold U+0000, and UTF-8 cannot encode an unpaired
surrogate. Both can reach us legally spelled: JSON's ``\\u0000`` and ``\\ud800`` escapes in a
websocket frame, a JSON body or an API request, ``%00`` in a form. Left alone they fail deep
inside a statement (or the upstream request's encoding) as an internal error; checked here,
the client is told which field to fix. Model output is another matter: it is stored without
its NUL characters (:func:`storable`), since no one can resend it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from conversations.errors import InvalidParameter

# Only these escapes can produce either kind of character in parsed JSON (a raw control
# character inside a JSON string is invalid JSON already): most payloads skip the walk.
_SUSPECT_TEXT = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SUSPECT_BYTES = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def problem(value: str, *, nul_ok: bool = False) -> str | None:
    """Why ``value`` cannot be stored (or sent upstream, with ``nul_ok``), or None."""
    if not nul_ok and "\x00" in value:
        return "contains a NUL character (U+0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (\\ud800-\\udfff), which is not valid Unicode"
    return None


def check(value: str, param: str, label: str = "The text") -> str:
    """``value``, or InvalidParameter naming ``param``."""
    reason = problem(value)
    if reason is not None:
        raise InvalidParameter(f"{label} {reason}.", param=param)
    return value


def bounded(value: Any, limit: int, *, label: str, param: str) -> str:
    """``value`` if it is text of at most ``limit`` characters; else the error that says
    which (``label`` starts the sentence: "The tool result", "system_prompt")."""
    if not isinstance(value, str):
        raise InvalidParameter(f"{label} must be text.", param=param)
    if len(value) > limit:
        raise InvalidParameter(f"{label} is longer than {limit} characters.", param=param)
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


# Built once: ``json.loads``/``json.dumps`` with any option build a new decoder or encoder per
# call, which was most of their cost for the small frames and chunks the hot paths send.
_DECODER = json.JSONDecoder(parse_constant=_not_json)
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def loads(raw: str) -> Any:
    """``raw`` parsed as JSON, or ValueError: also for NaN and Infinity, which Python's parser
    takes but JSON (and so jsonb, and the upstream) has not, and for nesting deeper than the
    parser goes (its RecursionError)."""
    try:
        return _DECODER.decode(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None


class DuplicateKey(ValueError):
    """A JSON object names ``key`` twice; ``path`` is the object's place in the document
    (``messages[1]``, ``tools[0].function``; empty for the outermost object) and ``field``
    the outermost object's key it is under (``key`` itself for the outermost object)."""

    def __init__(self, key: str, path: str, field: str) -> None:
        super().__init__(f"duplicate key {key!r} in {path or 'the outermost object'}")
        self.key = key
        self.path = path
        self.field = field


class _Duplicated(Exception):
    """Raised from inside the parse, which knows the pairs but not where they are."""


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Duplicated
    return obj


class _Pairs(list[tuple[str, Any]]):
    """An object's members in order, duplicates kept (only to say where one was)."""


_UNIQUE_DECODER = json.JSONDecoder(parse_constant=_not_json, object_pairs_hook=_unique_object)
_PAIRS_DECODER = json.JSONDecoder(parse_constant=_not_json, object_pairs_hook=_Pairs)


def loads_unique(raw: str) -> Any:
    """As :func:`loads`, and :class:`DuplicateKey` for an object that names a key twice, at
    any depth: Python's parser lets the last one win, so a body could say one thing to a
    reader of its text and another to us (DeepSeek refuses it). The check is one call per
    object from inside the parse (``object_pairs_hook``); only a refused body is parsed again,
    to say where."""
    try:
        return _UNIQUE_DECODER.decode(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except _Duplicated:
        pass
    try:
        document = _PAIRS_DECODER.decode(raw)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    raise _first_duplicate(document)


def _first_duplicate(document: Any) -> DuplicateKey:
    """The first object (in document order) that names a key twice."""
    stack: list[tuple[Any, str, str | None]] = [(document, "", None)]
    while stack:
        value, path, field = stack.pop()
        if isinstance(value, _Pairs):
            seen: set[str] = set()
            for key, _ in value:
                if key in seen:
                    return DuplicateKey(key, path, key if field is None else field)
                seen.add(key)
            stack.extend(
                (item, f"{path}.{key}" if path else key, key if field is None else field)
                for key, item in reversed(value)
            )
        elif isinstance(value, list):
            stack.extend((value[i], f"{path}[{i}]", field) for i in range(len(value) - 1, -1, -1))
    raise AssertionError("no duplicate key in a document refused for one")


def compact_json(value: Any) -> str:
    """``value`` as JSON without spaces, non-ASCII characters as they are: what our sockets and
    the API send."""
    return _COMPACT.encode(value)


def check_parsed_json(
    raw: str | bytes, parsed: Any, param: str = "body", *, nul_ok: bool = False
) -> None:
    """Refuse parsed JSON holding a string (or key) that cannot be stored, naming its top-level
    field (else ``param``); ``raw`` is the text it was parsed from (scanned first: the walk runs
    only when an escape could be at fault). ``nul_ok``: NUL passes (text sent upstream and not
    stored, as the API's)."""
    suspect = _SUSPECT_BYTES.search(raw) if isinstance(raw, bytes) else _SUSPECT_TEXT.search(raw)
    if suspect is None:
        return
    for path, value in _strings(parsed, ""):
        reason = problem(value, nul_ok=nul_ok)
        if reason is not None:
            # The error names the top-level field at fault (``content``, ``messages``...).
            field = re.split(r"[.\[ ]", path, maxsplit=1)[0] if isinstance(parsed, dict) else ""
            # The path is made of the body's own keys, which may hold a lone surrogate
            # themselves: escaped, so the error can be written in UTF-8.
            path, field = utf8_safe(path), utf8_safe(field)
            raise InvalidParameter(f"{path or 'The text'} {reason}.", param=field or param)


def utf8_safe(text: str) -> str:
    """``text`` as UTF-8 can carry it: a lone surrogate (``"\\ud800"``, which a JSON key or
    string may hold) is written as its escape."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _strings(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            yield f"{inner} (a field name)", key
            yield from _strings(item, inner)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: str) -> str:
    """Model output as it can be stored: without NUL characters, and an unpaired surrogate
    (a ``\\ud83d`` escape cut from its pair) as U+FFFD."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)
    return value


def storable_json(value: Any) -> Any:
    """A JSON document from the model (logprobs entries) without NUL characters in any
    string (jsonb cannot hold them); the very same object when there is none."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        items = [storable_json(item) for item in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, dict):
        pairs = [(storable(k), storable_json(v)) for k, v in value.items()]
        unchanged = all(
            k is k2 and v is v2 for (k, v), (k2, v2) in zip(value.items(), pairs, strict=True)
        )
        return value if unchanged else dict(pairs)
    return value
