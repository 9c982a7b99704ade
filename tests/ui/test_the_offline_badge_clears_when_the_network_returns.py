"""The connection badge says "Offline" while the browser is offline, and "Connected" again once
the network is back, also when the socket outlived the outage."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session, send


def test_the_badge_reads_connected_again_after_a_short_outage(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    badge = page.locator("#connection-status")
    page.context.set_offline(True)
    expect(badge).to_have_text("Offline")
    page.context.set_offline(False)
    expect(badge).to_have_text("Connected")
    send(page, "Still there? [[sim: say=Yes.]]")
