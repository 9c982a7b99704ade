"""DeepSeek's documented estimate: ~0.3 token per ASCII character, ~0.6 per other character."""

from __future__ import annotations

import pytest

from conversations import quota


@pytest.mark.parametrize(
    ("text", "ascii_chars", "other_chars"),
    [
        ("", 0, 0),
        ("a", 1, 0),
        ("Hello, world!\n\t~", 16, 0),
        ("日本語のテキスト", 0, 8),
        ("naïve café ü", 9, 3),
        ("emoji 😀 and a combining e\u0301", 24, 2),
        ("\x7f\x80\u00ff\u0100\U0010ffff", 1, 4),
        ("lone surrogate \ud800 kept", 20, 1),
    ],
)
def test_each_character_counts_by_whether_it_is_ascii(
    text: str, ascii_chars: int, other_chars: int
) -> None:
    assert len(text) == ascii_chars + other_chars
    expected = 0 if not text else max(1, round(ascii_chars * 0.3 + other_chars * 0.6))
    assert quota.estimate_tokens(text) == expected


def test_a_long_mixed_history_is_estimated_exactly() -> None:
    text = ("Hello there, how are you? " * 300) + ("日本" * 50) + "done"
    assert quota.estimate_tokens(text) == round((26 * 300 + 4) * 0.3 + 100 * 0.6)
