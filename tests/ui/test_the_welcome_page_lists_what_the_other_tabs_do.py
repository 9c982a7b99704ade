"""The welcome page (no conversation open) keeps its list of conversations current: one made,
renamed or deleted in another tab shows there at once, and after its socket reconnects it reads
the list again (what was announced meanwhile is not lost). It had no socket: its list stayed as
it was loaded."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session, send
from tests.ui.test_a_conversation_deleted_in_one_tab_leaves_the_others import own_list, watched


def test_the_welcome_page_follows_the_other_tabs(
    session: Session, ui_conversation: Conversation
) -> None:
    welcome = session.page
    welcome.goto(f"{session.server.url}/")
    welcome.wait_for_function("() => window.accountSocket?.ready === true")
    links = own_list(welcome).get_by_role("link")
    expect(links).to_have_text(["Deploy notes"])

    errors: list[str] = []
    other = watched(welcome.context.new_page(), errors)
    other.goto(f"{session.server.url}/c/{ui_conversation.id}/")
    expect(other.locator("#connection-status")).to_have_text("Connected")

    # Made there (New chat), it is listed here first once its first message is sent.
    other.get_by_role("button", name="New chat").click()
    other.wait_for_url(f"{session.server.url}/c/**")
    expect(other.locator("#connection-status")).to_have_text("Connected")
    new_id = other.url.rstrip("/").rsplit("/", 1)[-1]
    send(other, "Plan the release [[sim: say=Here is a plan.]]")
    expect(own_list(welcome).first).to_have_attribute("data-id", new_id)
    expect(other.locator("h1")).not_to_have_text("New chat", timeout=20000)
    title = other.locator("h1").inner_text()
    expect(links).to_have_text([title, "Deploy notes"])

    # Renamed there.
    sidebar = other.get_by_role("complementary", name="Conversations")
    sidebar.get_by_role("button", name="Rename Deploy notes").click()
    field = sidebar.get_by_role("textbox", name="New title")
    field.fill("Release checklist")
    field.press("Enter")
    expect(links).to_have_text([title, "Release checklist"])

    # Deleted there.
    entry = own_list(other).filter(has_text="Release checklist")
    entry.hover()
    entry.get_by_role("button", name="Delete Release checklist").click()
    expect(links).to_have_text([title])

    # Made while its socket was away (a row no one announces): read again on reconnecting.
    Conversation.objects.create(
        owner=ui_conversation.owner, model=ui_conversation.model, title="Made meanwhile"
    )
    welcome.evaluate("window.accountSocket.drop()")
    expect(links).to_have_text(["Made meanwhile", title])
    assert not session.errors, session.errors
    assert not errors, errors
