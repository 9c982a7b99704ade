"""A conversation's parameters edited on its admin page pass the chat's own rules
(conversations/params.py) against the conversation's model: a value the chat would refuse
is refused on the form, naming the parameter, and nothing is saved."""

from __future__ import annotations

import json

import pytest

from conversations.models import AuditEntry, Conversation, ModelConfig, User
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db


def page(conversation: Conversation) -> str:
    return f"/admin/conversations/conversation/{conversation.pk}/change/"


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ('{"temperature": 3}', "temperature must be in [0, 2]"),
        ('{"temprature": 0.5}', "Unknown parameter: temprature"),
        ('{"max_tokens": "many"}', "max_tokens must be an integer"),
        ('{"max_tokens": 10000000}', "the valid range of max_tokens is [1, "),
        ('{"top_p": NaN}', "NaN is not JSON"),
        ("[" * 100_000, "Enter valid JSON"),
        ('{"stop": ["\\u0000"]}', "NUL character"),
        ('[{"temperature": 1}]', "params must be an object"),
        ('"hot"', "params must be an object"),
    ],
)
def test_parameters_the_chat_would_refuse_are_refused_and_nothing_is_saved(
    staff: User, alice_conversation: Conversation, params: str, says: str
) -> None:
    alice_conversation.params = {"temperature": 0.7}
    alice_conversation.save()
    client = client_for(staff)
    response = client.post(
        page(alice_conversation), admin_form(client, page(alice_conversation), params=params)
    )
    assert response.status_code == 200  # the form again, with the error
    assert says in response.content.decode()
    alice_conversation.refresh_from_db()
    assert alice_conversation.params == {"temperature": 0.7}
    assert not AuditEntry.objects.exists()


def test_a_model_change_that_its_parameters_do_not_suit_is_refused(
    staff: User, alice_conversation: Conversation, reasoner_model: ModelConfig
) -> None:
    alice_conversation.params = {"logprobs": True}
    alice_conversation.save()
    client = client_for(staff)
    form = admin_form(client, page(alice_conversation), model=str(reasoner_model.pk))
    response = client.post(page(alice_conversation), form)
    assert response.status_code == 200
    assert (
        "deepseek-reasoner in thinking mode does not return logprobs" in response.content.decode()
    )
    alice_conversation.refresh_from_db()
    assert alice_conversation.model.name == "deepseek-chat"


def test_parameters_the_chat_accepts_are_saved_as_the_chat_saves_them(
    staff: User, alice_conversation: Conversation
) -> None:
    client = client_for(staff)
    params = {"temperature": 1, "stop": "END", "response_format": {}}
    form = admin_form(client, page(alice_conversation), params=json.dumps(params))
    response = client.post(page(alice_conversation), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    alice_conversation.refresh_from_db()
    assert alice_conversation.params == {
        "temperature": 1.0,
        "stop": ["END"],
        "response_format": {"type": "text"},
    }
    # Blank (or null): no parameters of its own.
    for blank in ("", "null"):
        alice_conversation.params = {"temperature": 0.7}
        alice_conversation.save()
        form = admin_form(client, page(alice_conversation), params=blank)
        response = client.post(page(alice_conversation), form)
        assert response.status_code == 302, response.content.decode()[:3000]
        alice_conversation.refresh_from_db()
        assert alice_conversation.params == {}
