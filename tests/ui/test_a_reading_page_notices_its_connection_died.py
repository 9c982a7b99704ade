"""A connection can die without closing (the laptop slept, the network changed) while the page
only reads: nothing it sends would go unanswered, so only a ping tells. After a quiet while the
page pings; with no pong it gives the connection up, opens another and catches up on what it
missed, as after any reconnect."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session


def test_a_reading_page_notices_its_connection_died_and_catches_up(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    connections: list[dict[str, Any]] = []

    def relay(ws: Any) -> None:
        """Pass frames both ways until the test marks the connection dead; then lose them."""
        server = ws.connect_to_server()
        state: dict[str, Any] = {"dead": False, "sent": []}
        connections.append(state)

        def from_page(message: str) -> None:
            state["sent"].append(message)
            if not state["dead"]:
                server.send(message)

        ws.on_message(from_page)
        server.on_message(lambda message: None if state["dead"] else ws.send(message))

    page.clock.install()
    page.route_web_socket(re.compile(r"/ws/conversations/"), relay)
    session.open(ui_conversation)

    # A quiet, live connection is pinged and answered: it stays.
    page.clock.run_for(30_000)
    expect(page.locator("#connection-status")).to_have_text("Connected")
    for _ in range(50):  # the relay hears the page's frames between browser steps
        if '{"type":"ping"}' in connections[0]["sent"]:
            break
        page.wait_for_timeout(100)
    assert '{"type":"ping"}' in connections[0]["sent"]
    page.wait_for_function("() => window.chatSocket.answerTimer === null")  # the pong came
    page.clock.run_for(12_000)
    assert len(connections) == 1

    # It dies without closing; meanwhile a message is written (in another tab, say).
    connections[0]["dead"] = True
    question = Message.objects.create(
        conversation=ui_conversation, role="user", author=ui_conversation.owner, content="Hello?"
    )
    Message.objects.create(
        conversation=ui_conversation,
        parent=question,
        role="assistant",
        status="complete",
        content="Written while the page was away.",
    )
    page.clock.run_for(30_000)  # quiet: a ping goes out, into the dead connection
    page.clock.run_for(11_000)  # no pong: the page replaces the connection

    expect(page.get_by_text("Written while the page was away.")).to_be_visible(timeout=15000)
    expect(page.locator("#connection-status")).to_have_text("Connected")
    assert len(connections) == 2
