"""OpenAI's ``user`` field (an end-user id for the caller's own tracking, which apps such as
LibreChat send on every call through the openai SDK) is accepted and not used: a call with it
is answered and charged like any other. It used to be a 400 "Unknown field: user", so those
apps could not use the API at all. Not a string, or longer than 512 bytes: a 400 naming it."""

from __future__ import annotations

import openai
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key, settled_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.mark.parametrize("stream", [False, True])
def test_a_call_naming_its_end_user_is_answered_and_charged(
    base: str, alice: User, chat_model: ModelConfig, stream: bool
) -> None:
    client = openai.OpenAI(base_url=base + "/v1", api_key=make_key(alice), max_retries=0)
    completion = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": "[[sim: say=Hello there.]]"}],
        user="librechat-user-6543",
        stream=stream,
    )
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in completion if c.choices)  # type: ignore[union-attr]
    else:
        text = completion.choices[0].message.content or ""  # type: ignore[union-attr]
    assert text == "Hello there."
    record = settled_record()
    assert record.purpose == "api" and record.state == "settled"


@pytest.mark.parametrize("value", [42, ["a"], "x" * 513])
def test_a_user_that_is_not_a_short_string_is_refused_by_name(
    base: str, alice: User, chat_model: ModelConfig, value: object
) -> None:
    error = assert_envelope(
        chat(base, bearer(make_key(alice)), {"user": value}), 400, "invalid_request_error"
    )
    assert error["param"] == "user" and "512 bytes" in error["message"]
    assert not UsageRecord.objects.exists()
