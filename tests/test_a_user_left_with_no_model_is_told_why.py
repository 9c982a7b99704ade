"""A user whose policy is left with no usable model (its last model disabled in the admin) is
told why on every path, naming the policy: the chat's pages (the new-chat picker, a
conversation's composer), starting a conversation, sending a message, and the API's model
list and completions. They saw an empty picker that said only "no model is available", were
told that the conversation's model was disabled and to "pick another" from an empty list, an
empty model list from the API, and "Model Not Exist" for the model they had been using.
With every model disabled, they are told that instead."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from django.test import Client

from conversations.models import Conversation, ModelConfig, Policy, UsageRecord, User, UserLimits
from tests.support import client_for, open_socket
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

WHY = "the models your policy “Chat only” allows are all disabled"
EVERY = "every model is disabled"


@pytest.fixture
def stranded(alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig) -> Policy:
    """Alice's policy allows only the chat model, which is then disabled (the reasoner stays
    enabled, for others)."""
    policy = Policy.objects.create(name="Chat only", all_models=False)
    policy.allowed_models.add(chat_model)
    UserLimits.objects.create(user=alice, policy=policy)
    ModelConfig.objects.filter(pk=chat_model.pk).update(enabled=False)
    return policy


def page_data(client: Client, conversation: Conversation) -> dict[str, Any]:
    html = client.get(f"/c/{conversation.id}/").content.decode()
    start = html.index('<script id="page-data" type="application/json">') + len(
        '<script id="page-data" type="application/json">'
    )
    return dict(json.loads(html[start : html.index("</script>", start)]))


def test_the_chats_pages_say_why_there_is_no_model(
    alice: User, alice_conversation: Conversation, stranded: Policy
) -> None:
    client = client_for(alice)
    listing = client.get("/").content.decode()
    assert WHY in listing
    assert 'id="starter"' not in listing  # no form to start a chat with no model

    data = page_data(client, alice_conversation)
    assert WHY in data["blocked"] and data["models"] == []
    assert "pick another" not in data["blocked"]  # there is none to pick

    created = client.post("/c/new/", {"model": "deepseek-chat"}, content_type="application/json")
    assert created.status_code == 403
    assert WHY in created.json()["error"]["message"]


def test_with_every_model_disabled_the_page_says_so(alice: User, chat_model: ModelConfig) -> None:
    ModelConfig.objects.update(enabled=False)
    assert EVERY in client_for(alice).get("/").content.decode()


async def test_a_message_sent_says_why(
    alice: User,
    alice_conversation: Conversation,
    stranded: Policy,
    simulator: str,
    generation_service: Any,
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "message.send", "client_id": "c1", "content": "hello"})
    error = await socket.until_type("error")
    await socket.close()
    assert error["code"] == "model_not_allowed" and WHY in error["message"], error
    assert await UsageRecord.objects.acount() == 0


async def test_a_message_to_a_disabled_model_says_it_is_disabled(
    alice: User,
    alice_conversation: Conversation,
    chat_model: ModelConfig,
    reasoner_model: ModelConfig,
    simulator: str,
    generation_service: Any,
) -> None:
    """Another model left to pick: the refusal says this one is disabled, to pick another
    (it said only "You may not use the model")."""
    await ModelConfig.objects.filter(pk=chat_model.pk).aupdate(enabled=False)
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "message.send", "client_id": "c1", "content": "hello"})
    error = await socket.until_type("error")
    await socket.close()
    assert error["code"] == "model_not_allowed"
    assert "deepseek-chat is disabled" in error["message"], error


def test_the_api_says_why(base: str, alice: User, stranded: Policy) -> None:
    key = make_key(alice)
    listed = assert_envelope(
        httpx.get(base + "/models", headers=bearer(key)), 403, "permission_error"
    )
    assert WHY in listed["message"] and listed["code"] == "model_not_allowed"
    for model in ("deepseek-chat", "deepseek-reasoner"):  # disabled; enabled, not allowed
        error = assert_envelope(chat(base, bearer(key), model=model), 403, "permission_error")
        assert WHY in error["message"] and error["param"] == "model", error
        # One model asked for: the same reason, not a 404 that hides why there is none.
        one = assert_envelope(
            httpx.get(f"{base}/models/{model}", headers=bearer(key)), 403, "permission_error"
        )
        assert WHY in one["message"] and one["code"] == "model_not_allowed", one
    assert not UsageRecord.objects.exists()


def test_the_api_says_when_every_model_is_disabled(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    key = make_key(alice)
    ModelConfig.objects.update(enabled=False)
    listed = assert_envelope(
        httpx.get(base + "/models", headers=bearer(key)), 403, "permission_error"
    )
    assert EVERY in listed["message"]
    error = assert_envelope(chat(base, bearer(key)), 403, "permission_error")
    assert EVERY in error["message"]
    for name in ("deepseek-chat", "no-such-model"):
        one = assert_envelope(
            httpx.get(f"{base}/v1/models/{name}", headers=bearer(key)), 403, "permission_error"
        )
        assert EVERY in one["message"], one
