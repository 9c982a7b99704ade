"""The composer's token estimate (``static/js/util.js``) is the server's
(``quota.estimate_tokens``), to the token, for every kind of text its weights tell apart: the
composer warns of a message that cannot fit with the very number admission refuses it with.
Weighed in integers on both sides (JavaScript's and Python's rounding differ at halves)."""

from __future__ import annotations

import base64
import hashlib
import json
import random

from conversations import quota
from conversations.models import Conversation
from tests.ui.conftest import Session

_random = random.Random(4)
TEXTS = [
    "a",
    "Hello",
    "Hello, world!",
    "word " * 301,
    "x" * 15,
    "1",
    "12345",
    "line one\n\tline two\r\n\x0b\x0c",
    "ctrl \x00\x01\x1f\x7f chars",
    "a" * 23,
    "a" * 24,
    "b" * 23 + " " + "c" * 24,
    hashlib.sha256(b"x").hexdigest(),
    base64.b64encode(_random.randbytes(300)).decode(),
    json.dumps([_random.random() for _ in range(40)]),
    json.dumps({"a": [1, 2, 3], "b": {"c": "d" * 30}}, separators=(",", ":")),
    "深度求索是一家专注于通用人工智能的公司。",
    "今日はとても良い天気ですね。カタカナ",
    "안녕하세요. 오늘 날씨가 좋네요.",
    "नमस्ते, यह हिंदी है।",
    "Привет, мир! Ελληνικά. مرحبا",
    "naïve café “quoted” — dash…",
    "😀🎉🚀👍 ❤️ ✅",
    "abc😀def" * 5,  # a run goes on across characters that are not ASCII
    "lone \ud800 surrogate",
    "mixed 深度 and 1234567890abcdef1234567890 and emoji 😀",
]


def test_the_composer_estimates_each_text_as_the_server_does(
    session: Session, ui_conversation: Conversation
) -> None:
    session.open(ui_conversation)
    page = session.page
    composer_js = page.locator("script[type=module]").last.get_attribute("src")
    assert composer_js is not None
    util = composer_js.rsplit("/", 1)[0] + "/util.js"
    estimates = page.evaluate(
        "async ([url, texts]) => {"
        "  const util = await import(url);"
        "  return texts.map((text) => util.estimateTokens(text));"
        "}",
        [util, TEXTS],
    )
    assert estimates == [quota.estimate_tokens(text) for text in TEXTS]
    assert estimates[9:11] == [7, 18]  # a run of 24 weighs more than 23 letters
