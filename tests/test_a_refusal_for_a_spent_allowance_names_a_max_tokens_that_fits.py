"""A call refused because its worst case passes what is left of the day or month says how large
a max_tokens would still fit, when one would: a call without max_tokens reserves the model's
default (4096), so a user with a few hundred tokens left was refused with nothing to tell them
that a smaller call would pass."""

from __future__ import annotations

import re

import pytest

from conversations.models import ModelConfig, User, UserLimits
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

HELLO = [{"role": "user", "content": "Hi [[sim: say=Hello.]]"}]


def test_the_refusal_names_a_max_tokens_that_passes(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=300)
    key = bearer(make_key(alice))
    refused = chat(base, key, messages=HELLO)  # no max_tokens: the default, 4096
    error = assert_envelope(refused, 429, "rate_limit_error")
    assert error["code"] == "quota_exceeded"
    found = re.search(
        r"A max_tokens of at most ([\d,]+) would fit what is left today\.", error["message"]
    )
    assert found, error["message"]
    fits = int(found[1].replace(",", ""))
    assert 0 < fits < 300

    # One more token does not fit; that many does.
    assert chat(base, key, messages=HELLO, max_tokens=fits + 1).status_code == 429
    answered = chat(base, key, messages=HELLO, max_tokens=fits)
    assert answered.status_code == 200, answered.text
    assert answered.json()["choices"][0]["message"]["content"] == "Hello."


def test_no_max_tokens_is_named_when_none_would_fit(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=5)
    refused = chat(base, bearer(make_key(alice)), messages=HELLO, max_tokens=1)
    error = assert_envelope(refused, 429, "rate_limit_error")
    assert "max_tokens of at most" not in error["message"]


def test_a_months_refusal_names_what_fits_this_month(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    """The month is checked first, so its refusal knows nothing of the day: what it names is
    said of the month only."""
    UserLimits.objects.create(user=alice, tokens_per_day=100_000, tokens_per_month=300)
    refused = chat(base, bearer(make_key(alice)), messages=HELLO)
    error = assert_envelope(refused, 429, "rate_limit_error")
    assert "monthly limit" in error["message"]
    assert re.search(r"would fit what is left this month\.", error["message"]), error["message"]
