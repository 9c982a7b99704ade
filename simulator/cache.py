"""Context-cache accounting: hits are the longest previously seen prefix at message boundaries.

Upstream stores cache units at the end of each request's input and of each model output (§8.7).
We hash the conversation message by message, chained, so a prefix is one digest lookup.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from simulator.validation import ChatRequest

# Bounded so a long benchmark cannot grow memory without limit; oldest prefixes go first.
DEFAULT_MAX_ENTRIES = 200_000


def _step(previous: bytes, role: str, text: str) -> bytes:
    return hashlib.blake2b(
        previous + role.encode() + b"\0" + text.encode() + b"\1", digest_size=16
    ).digest()


class PrefixCache:
    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._entries: OrderedDict[bytes, None] = OrderedDict()
        self._max_entries = max_entries

    def _remember(self, digest: bytes) -> None:
        self._entries[digest] = None
        self._entries.move_to_end(digest)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def boundaries(
        self, owner: str, request: ChatRequest, per_message_tokens: list[int]
    ) -> list[tuple[bytes, int]]:
        """Digest and cumulative prompt tokens after each message (tools count up front)."""
        tools = "".join(t.name + repr(t.parameters) for t in request.tools)
        digest = _step(owner.encode(), "tools", tools)
        total = request.tools_tokens
        result: list[tuple[bytes, int]] = []
        for message, tokens in zip(request.messages, per_message_tokens, strict=True):
            calls = "".join(c.name + c.arguments for c in message.tool_calls)
            digest = _step(digest, message.role, message.text + calls)
            total += tokens
            result.append((digest, total))
        return result

    def hit_and_store(self, boundaries: list[tuple[bytes, int]]) -> int:
        """Tokens of the longest stored prefix; then store every boundary of this input."""
        hit = 0
        for digest, total in boundaries:
            if digest in self._entries:
                hit = total
        for digest, _ in boundaries:
            self._remember(digest)
        return hit

    def store_output(self, last_boundary: bytes, reply_text: str, calls: str) -> None:
        """Remember the prefix that ends with this model output (the next turn's history)."""
        self._remember(_step(last_boundary, "assistant", reply_text + calls))
