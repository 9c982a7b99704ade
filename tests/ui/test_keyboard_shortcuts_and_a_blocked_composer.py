from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import expect

from conversations.models import Conversation, Message, ModelConfig
from tests.ui.conftest import Session, send, wait_until_idle, words


def test_the_shortcuts_list_and_keyboard_actions(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    page.locator("body").click()
    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    session.screenshot("shortcuts")
    dialog.get_by_role("button", name="Close").click()

    page.keyboard.press("/")
    composer = page.get_by_role("textbox", name="Message", exact=True)
    expect(composer).to_be_focused()
    composer.fill("line one")
    composer.press("Shift+Enter")
    composer.type("line two")
    expect(composer).to_have_value("line one\nline two")
    composer.fill("")

    send(page, "[[sim: tokens_per_s=8 say=" + "slow " * 80 + "]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("slow")
    # Escape closes an open menu first (its button keeps the focus); the reply goes on.
    export = page.locator("details.menu")
    export.locator("summary").click()
    expect(export.get_by_role("link", name="Markdown")).to_be_visible()
    page.keyboard.press("Escape")
    expect(export.get_by_role("link", name="Markdown")).to_be_hidden()
    expect(export.locator("summary")).to_be_focused()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()
    page.keyboard.press("Escape")
    wait_until_idle(page)
    expect(reply).to_contain_text("Stopped.")


def test_the_composer_says_why_it_is_disabled(
    session: Session, ui_conversation: Conversation, ui_chat_model: ModelConfig
) -> None:
    ModelConfig.objects.filter(pk=ui_chat_model.pk).update(enabled=False)
    page = session.page
    session.open(ui_conversation)
    composer = page.get_by_role("textbox", name="Message", exact=True)
    expect(composer).to_be_disabled()
    expect(page.get_by_role("button", name="Send", exact=True)).to_be_disabled()
    expect(page.locator("#composer-blocked")).to_contain_text("DeepSeek Chat is disabled")


def test_escape_in_the_title_search_clears_it_and_leaves_the_reply_running(
    session: Session, ui_conversation: Conversation
) -> None:
    """Escape in the sidebar's "Search titles" box clears the filter, as in any search box; it
    is not the shortcut that stops the reply being written. Before, clearing the filter while
    an answer streamed in stopped the answer. The page clears the box itself: not every
    browser does (Chromium's own clearing is turned off here, as a browser without it)."""
    page = session.page
    sent: list[dict[str, Any]] = []
    page.on(
        "websocket",
        lambda ws: ws.on("framesent", lambda payload: sent.append(json.loads(payload))),
    )
    session.open(ui_conversation)
    search = page.get_by_role("searchbox", name="Search conversations")
    search.evaluate(
        """box => box.addEventListener("keydown", (event) => {
            if (event.key === "Escape") event.preventDefault();
        })"""
    )
    answer = words(30, "slow")
    send(page, f"[[sim: tokens_per_s=10 say={answer}]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("slow0")
    search.fill("no such title")
    listed = page.locator(".conversation-list li[data-title]").first
    expect(listed).to_be_hidden()
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()
    search.press("Escape")
    expect(search).to_have_value("")
    expect(listed).to_be_visible()
    wait_until_idle(page)
    expect(reply.locator(".message-content")).to_have_text(answer)
    expect(reply).not_to_contain_text("Stopped.")
    kinds = [frame["type"] for frame in sent]
    assert "message.send" in kinds and "reply.cancel" not in kinds, kinds
    row = Message.objects.get(conversation=ui_conversation, role="assistant")
    assert (row.status, row.content) == ("complete", answer)
