"""A key reaches only the models its user's policy allows, and only if the policy allows the API
at all; the model list and the completions endpoint agree, and with API access off the balance
is refused as they are (it answered, showing the user's remaining tokens)."""

from __future__ import annotations

import httpx
import pytest

from conversations.models import ModelConfig, Policy, UsageRecord, User, UserLimits
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def chat_only(alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig) -> Policy:
    policy = Policy.objects.create(name="Chat only", all_models=False)
    policy.allowed_models.add(chat_model)
    UserLimits.objects.create(user=alice, policy=policy)
    return policy


def _model_ids(base: str, key: str) -> list[str]:
    response = httpx.get(base + "/models", headers=bearer(key))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    return [m["id"] for m in body["data"]]


def test_a_model_outside_the_policy_is_neither_listed_nor_callable(
    base: str, alice: User, chat_only: Policy
) -> None:
    key = make_key(alice)
    assert _model_ids(base, key) == ["deepseek-chat"]
    error = assert_envelope(
        chat(base, bearer(key), model="deepseek-reasoner"), 403, "permission_error"
    )
    assert "deepseek-reasoner" in error["message"] and error["param"] == "model"
    assert not UsageRecord.objects.exists()
    assert chat(base, bearer(key), model="deepseek-chat").status_code == 200


def test_a_disabled_model_disappears_for_everyone(
    base: str, alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    key = make_key(alice)
    assert _model_ids(base, key) == ["deepseek-chat", "deepseek-reasoner"]
    ModelConfig.objects.filter(pk=reasoner_model.pk).update(enabled=False)
    assert _model_ids(base, key) == ["deepseek-chat"]


def test_a_policy_without_api_access_refuses_every_endpoint(
    base: str, alice: User, chat_only: Policy
) -> None:
    key = make_key(alice)
    Policy.objects.filter(pk=chat_only.pk).update(api_access=False)
    assert_envelope(chat(base, bearer(key)), 403, "permission_error")
    assert_envelope(httpx.get(base + "/v1/models", headers=bearer(key)), 403, "permission_error")
    # The balance too (it answered, with the user's remaining tokens and is_available false).
    for path in ("/user/balance", "/v1/user/balance"):
        error = assert_envelope(
            httpx.get(base + path, headers=bearer(key)), 403, "permission_error"
        )
        assert error["code"] == "api_access_denied"
    head = httpx.head(base + "/user/balance", headers=bearer(key))
    assert head.status_code == 403 and head.content == b""
