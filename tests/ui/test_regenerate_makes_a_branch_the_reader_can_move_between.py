from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send, wait_until_idle


def test_regenerate_adds_a_version_and_the_arrows_move_between_them(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, "Name a colour")
    wait_until_idle(page)
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    first_id = reply.get_attribute("data-id")

    reply.get_by_role("button", name="Regenerate", exact=True).click()
    expect(reply.locator(".branch-pos")).to_have_text("2 / 2")
    wait_until_idle(page)
    second_id = reply.get_attribute("data-id")
    assert second_id != first_id
    rows = Message.objects.filter(conversation=ui_conversation, role="assistant")
    assert rows.count() == 2
    assert len({r.parent_id for r in rows}) == 1  # siblings under the same question

    reply.get_by_role("button", name="Previous version").click()
    expect(reply.locator(".branch-pos")).to_have_text("1 / 2")
    assert reply.get_attribute("data-id") == first_id
    first_line = Message.objects.get(pk=first_id).content.splitlines()[0].replace("**", "")
    expect(reply.locator(".message-content")).to_contain_text(first_line)
    reply.get_by_role("button", name="Next version").click()
    expect(reply.locator(".branch-pos")).to_have_text("2 / 2")
    assert reply.get_attribute("data-id") == second_id
    session.screenshot("branches")
