"""Bob collaborates on Alice's conversation, whose model his policy does not allow (or which is
disabled). His page told him to pick another model in Settings, which only the owner has. Now
it tells him to ask the owner, or to use "Continue in my chats" (the page's button); Alice is
still told to pick another in Settings."""

from __future__ import annotations

import pytest

from conversations import sharing
from conversations.models import Conversation, ModelConfig, Policy, Team, User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db

ASK = 'ask its owner to change the model, or use "Continue in my chats" and pick another.'


@pytest.fixture
def collaborated(alice: User, bob: User, alice_conversation: Conversation) -> Conversation:
    team = Team.objects.create(name="eng")
    team.members.set([alice, bob])
    sharing.set_visibility(alice, alice_conversation.id, "team", team.id)
    sharing.set_collaborators(alice, alice_conversation.id, ["bob"])
    return alice_conversation


def composer_note(user: User, conversation: Conversation) -> str:
    page = client_for(user).get(f"/c/{conversation.id}/").content.decode()
    start = page.index('id="composer-blocked"')
    return page[page.index(">", start) + 1 : page.index("</span>", start)]


def test_a_collaborator_whose_policy_refuses_the_model_is_told_to_ask_or_continue(
    alice: User,
    bob: User,
    collaborated: Conversation,
    chat_model: ModelConfig,
    reasoner_model: ModelConfig,
) -> None:
    policy = Policy.objects.create(name="Reasoner only", all_models=False)
    policy.allowed_models.add(reasoner_model)
    UserLimits.objects.create(user=bob, policy=policy)

    note = composer_note(bob, collaborated)
    assert note.replace("&quot;", '"') == f"You may not use {chat_model.display_name}; {ASK}"
    assert "Continue in my chats" in client_for(bob).get(f"/c/{collaborated.id}/").content.decode()


def test_a_collaborator_on_a_disabled_model_is_told_to_ask_or_continue(
    alice: User, bob: User, collaborated: Conversation, chat_model: ModelConfig
) -> None:
    ModelConfig.objects.filter(pk=chat_model.pk).update(enabled=False)
    assert composer_note(bob, collaborated).replace("&quot;", '"').endswith(f"is disabled; {ASK}")
    assert composer_note(alice, collaborated).endswith("is disabled; pick another in Settings.")
