"""Token accounting with DeepSeek's published rule of thumb.

DeepSeek documents ~0.3 token per English character and ~0.6 per Chinese character. The
simulator bills with that ratio so counts are predictable in tests; the real tokenizer would
add a dependency and still not match the chat template's overhead.
"""

from __future__ import annotations

import math
import re

ASCII_TOKENS_PER_CHAR = 0.3
WIDE_TOKENS_PER_CHAR = 0.6

# A "piece" is what one streamed chunk of one token carries: a short run of word characters
# (with its leading space), a single punctuation mark, or a run of whitespace/newlines.
# Word runs are capped at 4 characters so the piece count tracks count_tokens() (≈3.3
# ASCII characters per token) closely enough for usage to look consistent with the text.
_PIECE_RE = re.compile(r" ?[A-Za-z0-9]{1,4}| ?[^\sA-Za-z0-9]|\s+")


def count_tokens(text: str) -> int:
    """Estimate the tokens in `text`: 0.3 per ASCII char, 0.6 per other char, ≥1 if non-empty."""
    if not text:
        return 0
    if text.isascii():
        estimate = len(text) * ASCII_TOKENS_PER_CHAR
    else:
        ascii_chars = sum(1 for ch in text if ch < "\x80")
        estimate = (
            ascii_chars * ASCII_TOKENS_PER_CHAR + (len(text) - ascii_chars) * WIDE_TOKENS_PER_CHAR
        )
    # Rounding half-tokens up keeps the estimate from undercounting short messages.
    return max(1, math.ceil(estimate - 1e-9))


def split_pieces(text: str) -> list[str]:
    """Split generated text into token-sized pieces whose concatenation is exactly `text`."""
    pieces = _PIECE_RE.findall(text)
    # The pattern covers every character class, so nothing is lost; keep the guarantee explicit
    # because streamed deltas are concatenated by clients and must reproduce the reply.
    if "".join(pieces) != text:
        return list(text)
    return pieces
