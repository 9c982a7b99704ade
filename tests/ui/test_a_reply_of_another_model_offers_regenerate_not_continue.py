"""A reply cut off at the token limit by a model the conversation no longer uses offers
Regenerate, not Continue: the server refuses to continue one model's reply with another (which
would write under the first one's name, charged as the second's). Under the conversation's own
model again, Continue is offered."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message, ModelConfig, User
from tests.ui.conftest import Session, send, wait_until_idle


def test_a_reply_of_another_model_offers_regenerate_only(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    conversation = Conversation.objects.create(owner=ui_user, model=ui_chat_model, title="Halves")
    page = session.page
    session.open(conversation)
    send(page, "[[sim: finish=length say=The first half of an answer]]")
    wait_until_idle(page)
    reply = Message.objects.get(conversation=conversation, role="assistant")
    assert (reply.finish_reason, reply.content) == ("length", "The first half of an answer")
    article = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(article.get_by_role("button", name="Continue", exact=True)).to_be_visible()

    reasoner = ModelConfig.objects.get(name="deepseek-reasoner")
    Conversation.objects.filter(pk=conversation.pk).update(model=reasoner)
    session.open(conversation)
    article = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(article.get_by_role("button", name="Regenerate", exact=True)).to_be_visible()
    expect(article.get_by_role("button", name="Continue", exact=True)).to_have_count(0)
