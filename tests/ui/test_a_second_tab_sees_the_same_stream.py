from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session, send, wait_until_idle, words

ANSWER = words(60, "shared")


def test_a_second_tab_sees_the_reply_stream_in_too(
    session: Session, ui_conversation: Conversation
) -> None:
    first = session.page
    session.open(ui_conversation)
    second = first.context.new_page()
    second.goto(f"{session.server.url}/c/{ui_conversation.id}/")
    expect(second.locator("#connection-status")).to_have_text("Connected")

    send(first, f"Broadcast [[sim: tokens_per_s=20 say={ANSWER}]]")
    other_reply = second.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(second.get_by_role("article", name="You")).to_contain_text("Broadcast")
    expect(other_reply.locator(".message-content")).to_contain_text("shared3")
    expect(second.get_by_role("button", name="Stop", exact=True)).to_be_visible()
    wait_until_idle(second)
    expect(other_reply.locator(".message-content")).to_have_text(ANSWER)
    wait_until_idle(first)
    expect(
        first.get_by_role("article", name=re.compile("^DeepSeek Chat")).locator(".message-content")
    ).to_have_text(ANSWER)
