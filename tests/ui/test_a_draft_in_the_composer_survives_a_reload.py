"""What is typed in the composer and not sent yet is kept for the tab: a reload, or a visit to
another conversation and back, finds it where it was. A message sent leaves no draft behind."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from conversations.models import Conversation, Message, ModelConfig, User
from tests.ui.conftest import Session, send, wait_until_idle


def test_a_draft_is_back_after_a_reload_and_a_visit_elsewhere(
    session: Session, ui_conversation: Conversation, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    other = Conversation.objects.create(owner=ui_user, model=ui_chat_model, title="Other")
    page = session.page
    session.open(ui_conversation)
    composer = page.get_by_role("textbox", name="Message", exact=True)
    composer.fill("a long question I was still writing\nwith a second line")

    page.reload()
    session.wait_connected()
    expect(composer).to_have_value("a long question I was still writing\nwith a second line")
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_enabled()

    session.open(other)
    expect(composer).to_have_value("")  # each conversation has its own draft
    session.open(ui_conversation)
    expect(composer).to_have_value("a long question I was still writing\nwith a second line")
    composer.type(" and more")  # typing goes on at the end of the draft
    expect(composer).to_have_value(
        "a long question I was still writing\nwith a second line and more"
    )


def test_a_sent_message_leaves_no_draft(session: Session, ui_conversation: Conversation) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, "sent at once [[sim: say=ok]]")
    wait_until_idle(page)
    page.reload()
    session.wait_connected()
    expect(page.get_by_role("textbox", name="Message", exact=True)).to_have_value("")


def test_a_message_still_sending_at_a_reload_comes_back_to_the_composer(
    session: Session, ui_conversation: Conversation
) -> None:
    """Sent into a connection that is gone ("Sending…"), then the page reloaded: the server never
    got it, and its text is in the composer again, not lost with the page."""
    page = session.page
    connections: list[dict[str, bool]] = []

    def relay(ws: Any) -> None:
        server = ws.connect_to_server()
        state = {"dead": False}
        connections.append(state)
        ws.on_message(lambda message: None if state["dead"] else server.send(message))
        server.on_message(lambda message: None if state["dead"] else ws.send(message))

    page.route_web_socket(re.compile(r"/ws/conversations/"), relay)
    session.open(ui_conversation)
    composer = page.get_by_role("textbox", name="Message", exact=True)
    connections[-1]["dead"] = True
    composer.fill("the question that never left")
    composer.press("Enter")
    expect(page.get_by_role("article", name="You").last).to_contain_text("Sending…")
    expect(composer).to_have_value("")
    page.reload()
    session.wait_connected()
    expect(composer).to_have_value("the question that never left")
    assert not Message.objects.filter(conversation=ui_conversation).exists()
