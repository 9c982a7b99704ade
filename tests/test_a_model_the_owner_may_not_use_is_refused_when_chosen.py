"""A conversation's settings refuse a model its owner may not use when it is chosen, naming the
model and why: one their policy does not allow, one that is disabled, one that does not
exist. A model their policy forbids was saved without a word, and the conversation's next
message was refused; a disabled one was "That model is not available", naming neither. The
picker offers only the models the owner may use."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from conversations.models import Conversation, ModelConfig, Policy, User, UserLimits
from conversations.ui_actions import settings_version
from tests.support import client_for

pytestmark = pytest.mark.django_db


def save_settings(client: Client, conversation: Conversation, model: Any) -> Any:
    return client.post(
        f"/c/{conversation.id}/settings/",
        data=json.dumps(
            {
                "based_on": settings_version(Conversation.objects.get(pk=conversation.pk)),
                "model": model,
                "system_prompt": "Be brief.",
                "params": {},
            }
        ),
        content_type="application/json",
    )


def assert_refused(response: Any, conversation: Conversation, message: str) -> None:
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["errors"] == {"model": message}
    assert body["error"]["code"] == "model_not_allowed"
    conversation.refresh_from_db()
    assert conversation.model.name == "deepseek-chat"
    assert conversation.system_prompt == ""  # nothing of the settings saved


@pytest.fixture
def chat_only(alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig) -> Policy:
    policy = Policy.objects.create(name="Chat only", all_models=False)
    policy.allowed_models.add(chat_model)
    UserLimits.objects.create(user=alice, policy=policy)
    return policy


def test_a_model_the_policy_does_not_allow_is_refused_naming_the_policy(
    alice: User, alice_conversation: Conversation, chat_only: Policy
) -> None:
    response = save_settings(client_for(alice), alice_conversation, "deepseek-reasoner")
    assert_refused(
        response,
        alice_conversation,
        "The model deepseek-reasoner is not allowed by your policy “Chat only”: choose another.",
    )


def test_groups_policies_are_named_when_none_allows_it(
    alice: User, alice_conversation: Conversation, chat_model: ModelConfig
) -> None:
    for name in ("Writers", "Readers"):
        policy = Policy.objects.create(name=name, all_models=False)
        policy.allowed_models.add(chat_model)
        group = Group.objects.create(name=name.lower())
        policy.groups.add(group)
        alice.groups.add(group)
    response = save_settings(client_for(alice), alice_conversation, "deepseek-reasoner")
    assert_refused(
        response,
        alice_conversation,
        "The model deepseek-reasoner is not allowed by your groups' policies “Readers”, "
        "“Writers”: choose another.",
    )


def test_a_disabled_model_is_refused_saying_so(
    alice: User, alice_conversation: Conversation, reasoner_model: ModelConfig
) -> None:
    ModelConfig.objects.filter(pk=reasoner_model.pk).update(enabled=False)
    response = save_settings(client_for(alice), alice_conversation, "deepseek-reasoner")
    assert_refused(
        response,
        alice_conversation,
        "The model deepseek-reasoner is disabled at the moment: choose another.",
    )


def test_a_model_that_does_not_exist_is_named(
    alice: User, alice_conversation: Conversation
) -> None:
    response = save_settings(client_for(alice), alice_conversation, "deepseek-v9")
    assert_refused(response, alice_conversation, "There is no model deepseek-v9: choose another.")


def test_a_model_the_owner_may_use_is_saved(
    alice: User, alice_conversation: Conversation, chat_only: Policy, chat_model: ModelConfig
) -> None:
    response = save_settings(client_for(alice), alice_conversation, "deepseek-chat")
    assert response.status_code == 200, response.content
    alice_conversation.refresh_from_db()
    assert alice_conversation.system_prompt == "Be brief."


def test_the_picker_offers_only_the_models_the_owner_may_use(
    alice: User, alice_conversation: Conversation, chat_only: Policy
) -> None:
    html = client_for(alice).get(f"/c/{alice_conversation.id}/").content.decode()
    picker = html[
        html.index('<select id="set-model"') : html.index("</select>", html.index('id="set-model"'))
    ]
    assert 'value="deepseek-chat"' in picker
    assert "deepseek-reasoner" not in picker
    start = html.index('<script id="page-data" type="application/json">')
    data = json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])
    assert [m["name"] for m in data["models"]] == ["deepseek-chat"]
