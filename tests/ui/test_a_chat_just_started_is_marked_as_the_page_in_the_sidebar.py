"""A chat started from the welcome page is listed in the sidebar of its own page once its first
message is sent (an empty conversation is not listed, so the server's sidebar did not have it),
and that entry is marked as the page shown (aria-current, highlighted) as the server marks the
entry of the conversation it renders; it was not."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session, wait_until_idle


def test_a_chat_just_started_is_marked_as_the_page_shown(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    page.goto(f"{session.server.url}/")
    starter = page.get_by_role("textbox", name="Message", exact=True)
    starter.fill("Plan the release [[sim: say=Here is a plan.]]")
    starter.press("Enter")
    page.wait_for_url(f"{session.server.url}/c/**")
    new_id = page.url.rstrip("/").rsplit("/", 1)[-1]

    sidebar = page.get_by_role("complementary", name="Conversations")
    listed = sidebar.locator(".conversation-list:not(.shared-list) > li[data-id]")
    expect(listed).to_have_count(2)
    expect(listed.first).to_have_attribute("data-id", new_id)
    expect(listed.first.locator("a.conversation-link")).to_have_attribute("aria-current", "page")
    assert (
        listed.first.locator("a.conversation-link").evaluate(
            "link => getComputedStyle(link).fontWeight"
        )
        == "600"
    )
    # The other conversation listed is not the page shown.
    expect(sidebar.locator("a[aria-current=page]")).to_have_count(1)
    wait_until_idle(page)
    expect(page.locator("h1")).not_to_have_text("New chat", timeout=20000)
    expect(sidebar.locator("a[aria-current=page]")).to_have_attribute("data-id", new_id)
    assert not session.errors, session.errors
