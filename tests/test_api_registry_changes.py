"""The API checks a request against the model's registry row as the worker last read it, and
admits it in the same statement that reads the row again: whatever the admin changes between two
calls (a capability, a rename, disabling the model, revoking the key, suspending the user, a
lower output cap) applies to the very next call, and nothing stays reserved for a call that
was then refused."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import ApiKey, ModelConfig, UsageAccount, UsageRecord, User, UserLimits
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


def _nothing_reserved(user: User) -> None:
    assert not UsageRecord.objects.filter(state=UsageRecord.State.RESERVED).exists()
    assert UsageAccount.objects.get(user=user).streams == 0


def test_a_capability_taken_away_applies_to_the_next_call(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    headers = bearer(make_key(alice))
    assert chat(base, headers, tools=[TOOL]).status_code == 200  # the worker reads the row
    ModelConfig.objects.filter(pk=chat_model.pk).update(supports_tools=False)
    error = assert_envelope(chat(base, headers, tools=[TOOL]), 400, "invalid_request_error")
    assert error["param"] == "tools"
    _nothing_reserved(alice)
    # The settled calls: the one made, and none for the refused one that cost anything.
    assert sum(r.total_tokens for r in UsageRecord.objects.filter(user=alice)) > 0
    assert UsageRecord.objects.filter(user=alice, total_tokens__gt=0).count() == 1


def test_a_model_disabled_or_renamed_is_gone_at_once(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    headers = bearer(make_key(alice))
    assert chat(base, headers).status_code == 200
    ModelConfig.objects.filter(pk=chat_model.pk).update(name="team-chat")
    error = assert_envelope(chat(base, headers), 400, "invalid_request_error")
    assert error["message"] == "Model Not Exist" and error["param"] == "model"
    assert chat(base, headers, model="team-chat").status_code == 200
    ModelConfig.objects.filter(pk=chat_model.pk).update(enabled=False)
    error = assert_envelope(chat(base, headers, model="team-chat"), 400, "invalid_request_error")
    assert error["message"] == "Model Not Exist"
    _nothing_reserved(alice)


def test_a_revoked_key_and_a_suspended_user_are_refused_on_the_next_call(
    base: str, alice: User, bob: User, chat_model: ModelConfig
) -> None:
    alice_key, bob_key = make_key(alice), make_key(bob)
    assert chat(base, bearer(alice_key)).status_code == 200
    assert chat(base, bearer(bob_key)).status_code == 200
    ApiKey.objects.filter(user=alice).update(revoked_at=ApiKey.objects.get(user=alice).created_at)
    assert_envelope(chat(base, bearer(alice_key)), 401, "authentication_error")
    UserLimits.objects.update_or_create(user=bob, defaults={"suspended": True})
    assert_envelope(chat(base, bearer(bob_key)), 401, "authentication_error")
    assert UsageRecord.objects.count() == 2


def test_without_max_tokens_a_call_gets_the_default_within_the_users_cap(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    headers = bearer(make_key(alice))
    words = " ".join(f"w{i}" for i in range(500))  # 500 tokens
    body: dict[str, Any] = {"messages": [{"role": "user", "content": f"[[sim: say={words}]]"}]}
    whole = chat(base, headers, body)
    assert whole.status_code == 200, whole.text
    assert whole.json()["choices"][0]["finish_reason"] == "stop"
    assert whole.json()["usage"]["completion_tokens"] > 300
    UserLimits.objects.update_or_create(user=alice, defaults={"max_output_tokens": 300})
    # No max_tokens asked: the model's default within the cap, which admission applies.
    capped = chat(base, headers, body)
    assert capped.status_code == 200, capped.text
    assert capped.json()["choices"][0]["finish_reason"] == "length"
    assert capped.json()["usage"]["completion_tokens"] == 300
    error = assert_envelope(chat(base, headers, body, max_tokens=301), 400, "invalid_request_error")
    assert error["param"] == "max_tokens" and "300" in error["message"]
    _nothing_reserved(alice)
    charged = [r.total_tokens for r in UsageRecord.objects.filter(user=alice).order_by("pk")]
    assert len(charged) == 2 and UsageAccount.objects.get(user=alice).day_used == sum(charged)
