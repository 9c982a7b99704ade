"""A tab whose socket was down misses the message.created frames of that time: on reconnect it
reads the conversation again, so it shows every message and posts below the newest one."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send, wait_until_idle, words

ANSWER = words(40, "missed")


def open_second_tab(session: Session, conversation: Conversation) -> Page:
    second = session.page.context.new_page()
    second.goto(f"{session.server.url}/c/{conversation.id}/")
    expect(second.locator("#connection-status")).to_have_text("Connected")
    return second


def go_away(tab: Page) -> None:
    """Close the tab's socket and keep it closed (as a long network outage would)."""
    tab.evaluate("() => { window.chatSocket.closed = true; window.chatSocket.drop(); }")
    tab.wait_for_function("() => window.chatSocket.socket === null")


def come_back(tab: Page) -> None:
    tab.evaluate("() => window.chatSocket.connect()")
    expect(tab.locator("#connection-status")).to_have_text("Connected")


def test_a_turn_missed_while_away_appears_and_the_next_message_follows_it(
    session: Session, ui_conversation: Conversation
) -> None:
    first = session.page
    session.open(ui_conversation)
    send(first, "one [[sim: say=first answer]]")
    wait_until_idle(first)
    second = open_second_tab(session, ui_conversation)
    expect(second.locator(".messages > article")).to_have_count(2)

    go_away(second)
    send(first, "two [[sim: say=second answer]]")
    wait_until_idle(first)
    come_back(second)

    messages = second.locator(".messages > article")
    expect(messages).to_have_count(4)
    expect(messages.nth(2)).to_contain_text("two")
    expect(messages.nth(3)).to_contain_text("second answer")

    send(second, "three [[sim: say=third answer]]")
    wait_until_idle(second)
    three = Message.objects.get(conversation=ui_conversation, content__startswith="three")
    assert three.parent is not None and three.parent.content == "second answer"


def test_a_turn_still_streaming_when_the_tab_returns_streams_to_its_end(
    session: Session, ui_conversation: Conversation
) -> None:
    first = session.page
    session.open(ui_conversation)
    second = open_second_tab(session, ui_conversation)

    go_away(second)
    send(first, f"Missed [[sim: tokens_per_s=20 say={ANSWER}]]")
    reply = first.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("missed3")
    come_back(second)

    expect(second.get_by_role("article", name="You")).to_contain_text("Missed")
    wait_until_idle(first)
    wait_until_idle(second)
    expect(
        second.get_by_role("article", name=re.compile("^DeepSeek Chat")).locator(".message-content")
    ).to_have_text(ANSWER)
