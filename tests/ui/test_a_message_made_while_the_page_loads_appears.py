"""A message created after the page was rendered but before its socket joined (another tab, a
teammate, the API's history) reached neither the page nor the socket: the socket's ``ready``
says how new the newest message is, and the page re-reads itself to show it."""

from __future__ import annotations

import re

from playwright.sync_api import Route, expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send, wait_until_idle


def test_a_message_made_between_render_and_socket_appears(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, "first [[sim: say=first answer]]")
    wait_until_idle(page)
    last = Message.objects.filter(conversation=ui_conversation).order_by("-created_at").first()

    # Reload with the page's script held back: the HTML (and its data) arrive, the socket
    # cannot open yet.
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    script = re.compile(r"/static/js/conversation\.[^/]*js")
    page.route(script, hold)
    page.goto(f"{session.server.url}/c/{ui_conversation.id}/", wait_until="commit")
    while not held:
        page.wait_for_timeout(50)
    expect(page.locator("#page-data")).to_have_count(1)

    # Meanwhile, elsewhere: a new message below the last reply.
    Message.objects.create(
        conversation=ui_conversation,
        parent=last,
        role="user",
        author=ui_conversation.owner,
        content="made while the page loaded",
    )
    held[0].continue_()
    page.unroute(script, hold)
    session.wait_connected()

    messages = page.locator(".messages > article")
    expect(messages).to_have_count(3)
    expect(messages.nth(2)).to_contain_text("made while the page loaded")
