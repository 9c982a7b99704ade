from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send, wait_until_idle, words

ANSWER = words(90, "tok")


def test_a_reload_mid_stream_shows_the_text_so_far_and_keeps_streaming(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, f"Go [[sim: tokens_per_s=15 say={ANSWER}]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    # Wait past the first database checkpoint (about a second in).
    expect(reply.locator(".message-content")).to_contain_text("tok12", timeout=20000)

    page.reload()
    session.wait_connected()
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("tok0 tok1 tok2")
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()
    wait_until_idle(page, timeout=40000)
    expect(reply.locator(".message-content")).to_have_text(ANSWER)
    row = Message.objects.get(conversation=ui_conversation, role="assistant")
    assert row.status == "complete" and row.content == ANSWER


def test_a_dropped_connection_reconnects_and_resumes_the_reply(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, f"Go [[sim: tokens_per_s=15 say={ANSWER}]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("tok5", timeout=20000)
    page.evaluate("window.chatSocket.drop()")
    expect(page.locator("#connection-status")).to_have_text("Reconnecting…")
    session.wait_connected()
    wait_until_idle(page, timeout=40000)
    expect(reply.locator(".message-content")).to_have_text(ANSWER)
