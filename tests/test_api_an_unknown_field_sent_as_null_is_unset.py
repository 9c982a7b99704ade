"""A field we do not take, sent as null, asks for nothing: it is unset, as null is in every
optional field, and the call is answered and charged like any other. The OpenAI SDKs send
``"seed": null`` for a wrapper's ``seed=None`` (only an omitted argument is left out), so such
clients got a 400 "Unknown field: seed" on every call. A value that asks for something is
still refused naming the field."""

from __future__ import annotations

import openai
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import assert_envelope, bearer, chat, make_key, settled_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.mark.parametrize("stream", [False, True])
def test_openai_fields_passed_as_none_are_unset(
    base: str, alice: User, chat_model: ModelConfig, stream: bool
) -> None:
    client = openai.OpenAI(base_url=base + "/v1", api_key=make_key(alice), max_retries=0)
    completion = client.chat.completions.create(
        model="deepseek-chat",
        messages=[{"role": "user", "content": "[[sim: say=Hello there.]]"}],
        seed=None,
        logit_bias=None,
        metadata=None,
        stream=stream,
    )
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in completion if c.choices)  # type: ignore[union-attr]
    else:
        text = completion.choices[0].message.content or ""  # type: ignore[union-attr]
    assert text == "Hello there."
    record = settled_record()
    assert record.purpose == "api" and record.state == "settled"


def test_an_unknown_field_with_a_value_is_still_refused_by_name(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    error = assert_envelope(
        chat(base, bearer(make_key(alice)), {"seed": None, "logit_bias": {"42": 1}}),
        400,
        "invalid_request_error",
    )
    assert error["param"] == "logit_bias" and "logit_bias" in error["message"]
    assert not UsageRecord.objects.exists()


def test_an_unknown_stream_option_sent_as_null_is_unset_and_a_value_refused(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    """The same inside ``stream_options``: the OpenAI SDKs' ``include_obfuscation=None``."""
    key = make_key(alice)
    answered = chat(
        base,
        bearer(key),
        {"stream": True, "stream_options": {"include_usage": True, "include_obfuscation": None}},
    )
    assert answered.status_code == 200, answered.text
    assert answered.text.rstrip().endswith("data: [DONE]")
    error = assert_envelope(
        chat(
            base,
            bearer(key),
            {"stream": True, "stream_options": {"include_obfuscation": False}},
        ),
        400,
        "invalid_request_error",
    )
    assert error["param"] == "stream_options"
