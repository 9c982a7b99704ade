"""A reply cut off at the token limit while it was still thinking (its reasoning cut, no text
yet) offers Regenerate, not Continue. Before, the page offered Continue, which the server
always refuses for a reply with no text ("That reply has no text to continue; regenerate it
instead."): a button that could only fail."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message, ModelConfig, User
from tests.ui.conftest import Session, send, wait_until_idle


def test_a_reply_cut_off_while_thinking_offers_regenerate_only(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    conversation = Conversation.objects.create(
        owner=ui_user,
        model=ModelConfig.objects.get(name="deepseek-reasoner"),
        title="Primes",
        params={"max_tokens": 5},
    )
    page = session.page
    session.open(conversation)
    send(page, "Think about primes")
    wait_until_idle(page)
    reply = Message.objects.get(conversation=conversation, role="assistant")
    assert (reply.status, reply.finish_reason, reply.content) == ("complete", "length", "")
    assert reply.reasoning
    article = page.get_by_role("article", name=re.compile("^DeepSeek Reasoner"))
    expect(article).to_contain_text("cut off at the token limit")
    expect(article.get_by_role("button", name="Regenerate", exact=True)).to_be_visible()
    expect(article.get_by_role("button", name="Continue", exact=True)).to_have_count(0)
