from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig
from tests.ui.conftest import Session, send, wait_until_idle


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
    an answer streamed in stopped the answer."""
    page = session.page
    session.open(ui_conversation)
    send(page, "[[sim: tokens_per_s=8 say=" + "slow " * 80 + "]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("slow")
    search = page.get_by_role("searchbox", name="Search conversations")
    search.fill("no such title")
    listed = page.locator(".conversation-list li[data-title]").first
    expect(listed).to_be_hidden()
    search.press("Escape")
    expect(search).to_have_value("")
    expect(listed).to_be_visible()
    page.wait_for_timeout(1500)  # a stop would have ended the reply by now
    expect(page.get_by_role("button", name="Stop", exact=True)).to_be_visible()
    expect(reply).not_to_contain_text("Stopped.")
    # Escape elsewhere still stops it.
    page.get_by_role("textbox", name="Message", exact=True).press("Escape")
    wait_until_idle(page)
    expect(reply).to_contain_text("Stopped.")
