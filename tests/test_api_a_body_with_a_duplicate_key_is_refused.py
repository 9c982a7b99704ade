"""A body whose object names a key twice, at any depth, is a 400 naming the key and where it
is, as DeepSeek refuses it. Python's parser let the last one win: a body could say one thing to
whoever reads its text (a proxy's filter, a log) and another to us."""

from __future__ import annotations

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _post(base: str, headers: dict[str, str], raw: str) -> httpx.Response:
    return httpx.post(
        base + "/v1/chat/completions",
        headers={**headers, "Content-Type": "application/json"},
        content=raw.encode(),
        timeout=30,
    )


HELLO = '[{"role": "user", "content": "[[sim: say=hi]]"}]'
TOOL = (
    '[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", '
    '"properties": {"key": {"type": "string"}, "key": {"type": "integer"}}}}}]'
)


@pytest.mark.parametrize(
    ("raw", "param", "said"),
    [
        (
            '{"model": "deepseek-chat", "model": "deepseek-reasoner", "messages": ' + HELLO + "}",
            "model",
            'The request body has the key "model" twice',
        ),
        (
            '{"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}, '
            '{"role": "assistant", "content": "a", "content": "b"}, {"role": "user", '
            '"content": "c"}]}',
            "messages",
            'messages[1] has the key "content" twice',
        ),
        (
            '{"model": "deepseek-chat", "messages": ' + HELLO + ', "tools": ' + TOOL + "}",
            "tools",
            'tools[0].function.parameters.properties has the key "key" twice',
        ),
        (
            '{"model": "deepseek-chat", "messages": ' + HELLO + ', "stream_options": '
            '{"\\ud800": true, "\\ud800": false}, "stream": true}',
            "stream_options",
            'stream_options has the key "\\ud800" twice',
        ),
    ],
    ids=["top-level", "in-a-message", "deep-in-a-tool-schema", "a-key-utf8-cannot-encode"],
)
def test_a_duplicate_key_is_a_400_naming_it(
    base: str, alice: User, chat_model: ModelConfig, raw: str, param: str, said: str
) -> None:
    response = _post(base, bearer(make_key(alice)), raw)
    error = assert_envelope(response, 400, "invalid_request_error")
    assert error["param"] == param
    assert error["message"].startswith(said), error["message"]
    assert not UsageRecord.objects.filter(user=alice).exists()


def test_the_key_is_checked_first(base: str, alice: User, chat_model: ModelConfig) -> None:
    raw = '{"model": "deepseek-chat", "model": "deepseek-chat", "messages": ' + HELLO + "}"
    assert_envelope(_post(base, bearer("sk-team-not-a-key"), raw), 401, "authentication_error")


def test_the_same_key_in_different_objects_is_fine(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    raw = (
        '{"model": "deepseek-chat", "messages": [{"role": "user", "content": "a"}, '
        '{"role": "assistant", "content": "b"}, {"role": "user", "content": "[[sim: say=ok]]"}]}'
    )
    response = _post(base, bearer(make_key(alice)), raw)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "ok"
