"""Through the API, a user in several groups gets the most generous of their groups' policies
(the union of their models, API access if any grants it, the largest output cap), and a policy
of their own replaces their groups' — as in the chat."""

from __future__ import annotations

import httpx
import pytest
from django.contrib.auth.models import Group

from conversations.models import ModelConfig, Policy, User, UserLimits
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _policy_for_group(name: str, user: User, **fields: object) -> Policy:
    group = Group.objects.create(name=name)
    user.groups.add(group)
    policy = Policy.objects.create(name=name, **fields)
    policy.groups.add(group)
    return policy


def _listed(base: str, key: str) -> list[str]:
    response = httpx.get(base + "/v1/models", headers=bearer(key))
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["data"]]


def test_groups_add_up_to_the_most_generous_policy(
    base: str, alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    chatting = _policy_for_group(
        "chatting", alice, all_models=False, api_access=False, max_output_tokens=100
    )
    chatting.allowed_models.add(chat_model)
    key = make_key(alice)
    # One group, without API access: refused everywhere.
    assert_envelope(httpx.get(base + "/v1/models", headers=bearer(key)), 403, "permission_error")
    reasoning = _policy_for_group(
        "reasoning", alice, all_models=False, api_access=True, max_output_tokens=200
    )
    reasoning.allowed_models.add(reasoner_model)
    # Two groups: API access from the second, both models, the larger cap.
    assert sorted(_listed(base, key)) == ["deepseek-chat", "deepseek-reasoner"]
    assert chat(base, bearer(key), max_tokens=200).status_code == 200
    error = assert_envelope(chat(base, bearer(key), max_tokens=201), 400, "invalid_request_error")
    assert error["param"] == "max_tokens" and "200" in error["message"]


def test_a_policy_of_ones_own_replaces_the_groups(
    base: str, alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    _policy_for_group("everything", alice, all_models=True)
    key = make_key(alice)
    assert sorted(_listed(base, key)) == ["deepseek-chat", "deepseek-reasoner"]
    own = Policy.objects.create(name="reasoner only", all_models=False)
    own.allowed_models.add(reasoner_model)
    UserLimits.objects.create(user=alice, policy=own)
    assert _listed(base, key) == ["deepseek-reasoner"]
    error = assert_envelope(chat(base, bearer(key)), 403, "permission_error")
    assert error["param"] == "model" and "GET /models" in error["message"]
