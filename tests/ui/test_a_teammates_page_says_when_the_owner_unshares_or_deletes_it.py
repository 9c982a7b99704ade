"""Bob reads a conversation Alice shares with their team while her reply is being written. When
she makes it private, his page says it is no longer shared with him and the reply stops growing
there; when she deletes one he is reading, his page says it was deleted. No error either time,
in the page or its console."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, Team
from tests.ui.conftest import Session, send, wait_until_idle, words
from tests.ui.test_a_teammates_lists_follow_what_is_shared_with_them import set_visibility

UNSHARED = "This conversation is no longer shared with you."


def test_unshared_mid_stream_the_teammates_page_says_so_and_stops_following(
    session: Session, teammate_session: Session, ui_team: Team, ui_conversation: Conversation
) -> None:
    server = session.server
    set_visibility(session.page, server, ui_conversation, shared=True)
    session.open(ui_conversation)
    teammate_session.open(ui_conversation)
    reader = teammate_session.page

    # A reply long enough to be still streaming when the conversation is made private.
    composer = session.page.get_by_role("textbox", name="Message", exact=True)
    composer.fill(f"[[sim: say={words(3000)}]]")
    composer.press("Enter")
    reply = reader.locator(".message.is-streaming")
    expect(reply).to_contain_text("word20")

    sharing = session.page.context.new_page()
    set_visibility(sharing, server, ui_conversation, shared=False)
    expect(reader.locator("#connection-status")).to_have_text(UNSHARED)
    expect(reader.locator(".shared-list > li")).to_have_count(0)  # nor listed as shared
    expect(reader.locator(".deleted-notice")).to_have_text(f"{UNSHARED} Back to your conversations")
    # The reply is not said to be still written here, and stops growing.
    last = reader.locator(".messages > article").last
    expect(last).to_contain_text("The rest of this reply is not shown here.")
    expect(reader.locator(".message.is-streaming")).to_have_count(0)
    shown = last.inner_text()
    reader.wait_for_timeout(1500)  # the reply goes on being written, not here
    assert last.inner_text() == shown
    assert "word2999" not in shown
    expect(reader.get_by_role("button", name="Continue in my chats")).to_be_hidden()
    reader.screenshot(path="test-results/screenshots/unshared.png")
    assert not teammate_session.errors, teammate_session.errors


def test_deleted_while_open_the_teammates_page_says_it_was_deleted(
    session: Session, teammate_session: Session, ui_team: Team, ui_conversation: Conversation
) -> None:
    server = session.server
    set_visibility(session.page, server, ui_conversation, shared=True)
    session.open(ui_conversation)
    send(session.page, "[[sim: say=Tides come twice a day.]]")
    wait_until_idle(session.page)
    teammate_session.open(ui_conversation)
    expect(teammate_session.page.locator(".messages")).to_contain_text("Tides come twice a day.")

    sidebar = session.page.get_by_role("complementary", name="Conversations")
    sidebar.get_by_role("button", name="Delete Deploy notes").click()
    reader = teammate_session.page
    expect(reader.locator(".deleted-notice")).to_have_text(
        "This conversation was deleted. Back to your conversations"
    )
    expect(reader.locator(".messages")).to_contain_text("Tides come twice a day.")
    expect(reader.locator(".shared-list > li")).to_have_count(0)  # nor listed as shared
    reader.wait_for_timeout(1000)
    assert not teammate_session.errors, teammate_session.errors
