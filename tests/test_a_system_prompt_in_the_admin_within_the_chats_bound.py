"""A conversation's system prompt edited on its admin page is held to the chat's bound
(MAX_SYSTEM_PROMPT_CHARS): a longer one, saved there, made the owner's every later change of
the conversation's settings (model, temperature...) fail until they shortened it."""

from __future__ import annotations

import pytest

from conversations.models import Conversation, User
from conversations.ui_actions import MAX_SYSTEM_PROMPT_CHARS, settings_version, update_settings
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db


def page(conversation: Conversation) -> str:
    return f"/admin/conversations/conversation/{conversation.pk}/change/"


def test_a_system_prompt_longer_than_the_chat_takes_is_refused(
    staff: User, alice_conversation: Conversation
) -> None:
    client = client_for(staff)
    long = "x" * (MAX_SYSTEM_PROMPT_CHARS + 1)
    response = client.post(
        page(alice_conversation), admin_form(client, page(alice_conversation), system_prompt=long)
    )
    assert response.status_code == 200  # the form again, with the error
    assert f"The system prompt is longer than {MAX_SYSTEM_PROMPT_CHARS} characters" in (
        response.content.decode()
    )
    alice_conversation.refresh_from_db()
    assert alice_conversation.system_prompt == ""


def test_a_system_prompt_at_the_bound_is_saved_and_the_chat_keeps_working_with_it(
    staff: User, alice_conversation: Conversation
) -> None:
    client = client_for(staff)
    longest = "x" * MAX_SYSTEM_PROMPT_CHARS
    form = admin_form(client, page(alice_conversation), system_prompt=longest)
    assert client.post(page(alice_conversation), form).status_code == 302
    alice_conversation.refresh_from_db()
    assert len(alice_conversation.system_prompt) == MAX_SYSTEM_PROMPT_CHARS
    update_settings(
        alice_conversation,
        based_on=settings_version(alice_conversation),
        model_name="deepseek-chat",
        system_prompt=alice_conversation.system_prompt,
        new_params={"temperature": 0.2},
    )
