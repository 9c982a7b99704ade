"""A conversation made in another tab (or by a script, a fork, an import) appears in the sidebar
of the account's open conversation pages at once, and its title when it is named; it waited for
a reload."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session


def test_a_chat_started_in_another_tab_is_listed_with_its_title(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    sidebar = page.get_by_role("complementary", name="Conversations")
    listed = sidebar.locator(".conversation-list:not(.shared-list) > li[data-id]")
    expect(listed).to_have_count(1)

    other = page.context.new_page()
    other.goto(f"{session.server.url}/")
    starter = other.get_by_role("textbox", name="Message", exact=True)
    starter.fill("Plan the release [[sim: say=Here is a plan.]]")
    starter.press("Enter")
    other.wait_for_url(f"{session.server.url}/c/**")
    new_id = other.url.rstrip("/").rsplit("/", 1)[-1]

    expect(listed).to_have_count(2)
    first = listed.first
    expect(first).to_have_attribute("data-id", new_id)
    link = first.get_by_role("link")
    expect(link).to_have_attribute("href", f"/c/{new_id}/")
    # Named after its first reply: the title reaches this tab too.
    expect(other.locator("h1")).not_to_have_text("New chat", timeout=20000)
    title = other.locator("h1").inner_text()
    expect(link).to_have_text(title)
    expect(first.get_by_role("button", name=f"Rename {title}")).to_be_attached()

    # Its entry works as the server's do: Delete, then Undo.
    first.hover()
    first.get_by_role("button", name=f"Delete {title}").click()
    expect(listed).to_have_count(1)
    page.get_by_role("button", name="Undo").click()
    expect(listed).to_have_count(2)
    assert not session.errors, session.errors
