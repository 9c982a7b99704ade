"""JSON mode turned on in a conversation's settings applies to the replies asked for from then
on: the earlier replies, written as markdown, stay drawn as markdown — not shown as code
under "Invalid JSON" — and the JSON reply that follows is shown as JSON, before and after a
reload."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session, send, wait_until_idle


def test_the_replies_before_json_mode_stay_markdown(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, "Hello [[sim: say=Plain **bold** words]]")
    wait_until_idle(page)
    replies = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(replies.first.locator(".message-content strong")).to_have_text("bold")

    page.get_by_role("button", name="Settings").click()
    page.get_by_label("JSON mode (the prompt must mention “json”)").check()
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.locator("#settings-dialog")).not_to_be_visible()
    send(page, "The release as json with name and version fields")
    wait_until_idle(page)

    for _ in range(2):  # as drawn live, then as read again
        expect(replies).to_have_count(2)
        first, second = replies.nth(0), replies.nth(1)
        expect(first.locator(".message-content strong")).to_have_text("bold")
        expect(first.locator(".json-invalid")).to_have_count(0)
        expect(second.locator(".json-valid")).to_have_text("Valid JSON")
        page.reload()
        session.wait_connected()
