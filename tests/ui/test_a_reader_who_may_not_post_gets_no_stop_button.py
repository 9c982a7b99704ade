"""A teammate who may only read a shared conversation cannot stop its replies: no Stop button
for them, and Esc does nothing (both only produced a permission error)."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from conversations.models import Conversation, Message
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session, send, wait_until_idle, words

ANSWER = words(60, "slow")


def test_a_reader_sees_the_reply_stream_without_a_stop_button(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    make_user("bob", first_name="Bob")
    Conversation.objects.filter(pk=ui_conversation.pk).update(visibility="team")
    alice = new_session(browser, chat_server)
    bob = new_session(browser, chat_server, username="bob")
    alice.open(ui_conversation)
    bob.open(ui_conversation)

    send(alice.page, f"Go [[sim: tokens_per_s=15 say={ANSWER}]]")
    reply = bob.page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("slow3")
    expect(alice.page.get_by_role("button", name="Stop", exact=True)).to_be_visible()
    expect(bob.page.get_by_role("button", name="Stop", exact=True)).to_be_hidden()
    bob.page.locator("body").press("Escape")

    wait_until_idle(bob.page, timeout=40000)
    expect(reply.locator(".message-content")).to_have_text(ANSWER)
    expect(bob.page.locator("#composer-error")).to_have_text("")
    assert Message.objects.get(conversation=ui_conversation, role="assistant").status == "complete"
