"""A frame written into a connection that is already dead goes nowhere: the tab keeps every frame
with a client_id until its message.created arrives, shows the message as pending meanwhile, and
sends it again after reconnecting (the server deduplicates by client_id)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send, wait_until_idle


def test_a_message_written_into_a_dead_connection_is_sent_after_reconnecting(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    # The TCP connection is dead but the browser does not know yet: writes go nowhere.
    page.evaluate("() => { window.chatSocket.socket.send = () => {}; }")
    composer = page.get_by_role("textbox", name="Message", exact=True)
    composer.fill("Please remember this [[sim: say=Remembered.]]")
    composer.press("Enter")
    expect(composer).to_have_value("")
    pending = page.get_by_role("article", name="You")
    expect(pending).to_contain_text("Please remember this")
    expect(pending).to_contain_text("Sending…")
    expect(pending).to_have_css("opacity", "0.65")  # shown as not yet delivered

    page.evaluate("() => window.chatSocket.drop()")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_have_text("Remembered.", timeout=20000)
    expect(page.locator(".messages > article")).to_have_count(2)
    expect(pending).not_to_contain_text("Sending…")
    expect(pending).to_have_css("opacity", "1")
    assert Message.objects.filter(conversation=ui_conversation).count() == 2


def test_a_message_typed_while_away_follows_what_was_posted_meanwhile(
    session: Session, ui_conversation: Conversation
) -> None:
    first = session.page
    session.open(ui_conversation)
    send(first, "one [[sim: say=first answer]]")
    wait_until_idle(first)
    second = first.context.new_page()
    second.goto(f"{session.server.url}/c/{ui_conversation.id}/")
    expect(second.locator("#connection-status")).to_have_text("Connected")
    second.evaluate("() => { window.chatSocket.closed = true; window.chatSocket.drop(); }")
    second.wait_for_function("() => window.chatSocket.socket === null")

    send(first, "two [[sim: say=second answer]]")
    wait_until_idle(first)
    composer = second.get_by_role("textbox", name="Message", exact=True)
    composer.fill("three [[sim: say=third answer]]")
    composer.press("Enter")
    expect(second.locator(".messages > article").last).to_contain_text("Sending…")
    second.evaluate("() => window.chatSocket.connect()")

    messages = second.locator(".messages > article")
    expect(messages).to_have_count(6)
    expect(messages.nth(5)).to_contain_text("third answer")
    three = Message.objects.get(conversation=ui_conversation, content__startswith="three")
    assert three.parent is not None and three.parent.content == "second answer"
