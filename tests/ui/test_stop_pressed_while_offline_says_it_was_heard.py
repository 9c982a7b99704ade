"""Stop pressed while the page is offline says at once that it was heard: the button reads
"Stopping…" (disabled) until the reply ends, which it does once the page is back and the stop
goes out. It said nothing, and the reply kept writing (and being charged) until the page was
back; pressed again and again, it looked broken."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send, wait_until_idle


def test_stop_pressed_while_offline_says_so_and_stops_once_back(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, "[[sim: tokens_per_s=8 say=" + "slow " * 80 + "]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("slow")

    page.evaluate("() => { window.chatSocket.closed = true; window.chatSocket.drop(); }")
    page.wait_for_function("() => window.chatSocket.socket === null")
    page.get_by_role("button", name="Stop", exact=True).click()
    stopping = page.get_by_role("button", name="Stopping…", exact=True)
    expect(stopping).to_be_visible()
    expect(stopping).to_be_disabled()
    expect(page.get_by_role("textbox", name="Message", exact=True)).to_be_focused()
    page.wait_for_timeout(500)
    assert Message.objects.get(conversation=ui_conversation, role="assistant").status in (
        "pending",
        "streaming",
    )  # the stop has not gone out

    page.evaluate("() => { window.chatSocket.closed = false; window.chatSocket.connect(); }")
    wait_until_idle(page)
    expect(reply).to_contain_text("Stopped.")
    expect(stopping).to_be_hidden()
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_visible()
    assert Message.objects.get(conversation=ui_conversation, role="assistant").status == "cancelled"
    assert not session.errors, session.errors


def test_a_run_begun_elsewhere_while_away_may_be_stopped(
    session: Session, ui_conversation: Conversation
) -> None:
    """Stopped here, then continued in another tab while this one was away: back, this tab
    learns of the new run from a snapshot only, and its Stop works (it stayed "Stopping…")."""
    page = session.page
    session.open(ui_conversation)
    slow = "[[sim: tokens_per_s=8 say=" + "slow " * 80 + "]]"
    send(page, slow)
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("slow")
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until_idle(page)
    expect(reply).to_contain_text("Stopped.")

    page.evaluate("() => { window.chatSocket.closed = true; window.chatSocket.drop(); }")
    page.wait_for_function("() => window.chatSocket.socket === null")
    other = page.context.new_page()
    other.goto(f"{session.server.url}/c/{ui_conversation.id}/")
    other_reply = other.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    other_reply.get_by_role("button", name="Continue", exact=True).click()
    expect(other.get_by_role("button", name="Stop", exact=True)).to_be_visible()

    page.evaluate("() => { window.chatSocket.closed = false; window.chatSocket.connect(); }")
    stop = page.get_by_role("button", name="Stop", exact=True)
    expect(stop).to_be_visible()
    expect(stop).to_be_enabled()
    stop.click()
    wait_until_idle(page)
    wait_until_idle(other)
    assert Message.objects.get(conversation=ui_conversation, role="assistant").status == "cancelled"
    assert not session.errors, session.errors
