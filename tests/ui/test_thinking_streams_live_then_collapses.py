from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message, ModelConfig, User
from tests.ui.conftest import Session, send, wait_until_idle


def test_the_thinking_block_streams_live_then_collapses_with_its_estimate(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    reasoner = ModelConfig.objects.get(name="deepseek-reasoner")
    conversation = Conversation.objects.create(owner=ui_user, model=reasoner, title="Puzzle")
    page = session.page
    session.open(conversation)
    send(page, "Think it through [[sim: tokens_per_s=40 say=The answer is 42.]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Reasoner"))
    thinking = reply.locator("details.thinking")
    expect(thinking).to_have_attribute("open", "")
    expect(thinking.locator("summary")).to_contain_text("Thinking…")
    wait_until_idle(page)
    expect(reply.locator(".message-content")).to_have_text("The answer is 42.")
    expect(thinking).not_to_have_attribute("open", "")
    expect(thinking.locator("summary")).to_have_text(
        re.compile(r"^Thought \(~\d+ tokens, [\d.]+ m?s\)$")
    )
    thinking.locator("summary").click()
    row = Message.objects.get(conversation=conversation, role="assistant")
    expect(thinking.locator(".thinking-body")).to_contain_text(row.reasoning.split()[0])
    session.screenshot("thinking")
