"""Edit boxes and tool-answer boxes live inside message articles, which are rebuilt whenever the
message list changes: what the reader has typed there is kept (and so is the focus)."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, Message, User
from tests.ui.conftest import Session, send, wait_until_idle

CALLS = [
    {"id": f"call_{name}", "type": "function", "function": {"name": name, "arguments": "{}"}}
    for name in ("weather", "time")
]


def test_a_second_tool_answer_is_kept_when_the_first_is_sent(
    session: Session, ui_conversation: Conversation, ui_user: User
) -> None:
    question = Message.objects.create(
        conversation=ui_conversation, role="user", author=ui_user, content="Weather and time?"
    )
    Message.objects.create(
        conversation=ui_conversation,
        parent=question,
        role="assistant",
        model=ui_conversation.model,
        status="complete",
        finish_reason="tool_calls",
        tool_calls=CALLS,
    )
    page = session.page
    session.open(ui_conversation)
    page.get_by_label("Result of time").fill("12:00")
    page.get_by_label("Result of weather").fill("sunny")
    page.get_by_role("region", name="Tool call weather").get_by_role(
        "button", name="Send result"
    ).click()
    expect(page.get_by_role("article", name="Tool result")).to_have_count(1)
    expect(page.get_by_label("Result of time")).to_have_value("12:00")


def test_an_edit_in_progress_is_kept_when_another_tab_posts(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, "first [[sim: say=ok]]")
    wait_until_idle(page)
    other = page.context.new_page()
    other.goto(f"{session.server.url}/c/{ui_conversation.id}/")
    expect(other.locator("#connection-status")).to_have_text("Connected")

    page.get_by_role("article", name="You").get_by_role("button", name="Edit").click()
    area = page.get_by_label("Edit message")
    area.fill("a carefully rewritten question")
    send(other, "second [[sim: say=ok2]]")
    expect(page.locator(".messages > article")).to_have_count(4)
    wait_until_idle(page)
    expect(area).to_have_value("a carefully rewritten question")
    expect(area).to_be_focused()
