"""Bob reads a conversation Alice shares with their team: he may not post. When she makes him a
collaborator, his open page lets him post at once, without a reload; when she takes that back,
it blocks him again. His page stayed read-only until he reloaded it (losing access, by
contrast, closed his view live)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from conversations.models import Conversation, Team, User
from tests.ui.conftest import LiveServer, Session
from tests.ui.test_a_teammates_lists_follow_what_is_shared_with_them import set_visibility

READ_ONLY = "You can read this conversation; only its owner and collaborators post."


def set_collaborators(
    page: Page, server: LiveServer, conversation: Conversation, names: str
) -> None:
    page.goto(f"{server.url}/c/{conversation.id}/sharing/")
    page.get_by_label("Collaborators (user names, comma-separated)").fill(names)
    page.get_by_role("button", name="Save collaborators").click()
    expect(page.get_by_label("Collaborators (user names, comma-separated)")).to_have_value(names)


def test_a_reader_made_a_collaborator_may_post_at_once_and_not_once_removed(
    session: Session,
    teammate_session: Session,
    ui_teammate: User,
    ui_team: Team,
    ui_conversation: Conversation,
) -> None:
    server = session.server
    set_visibility(session.page, server, ui_conversation, shared=True)
    teammate_session.open(ui_conversation)
    reader = teammate_session.page
    composer = reader.get_by_role("textbox", name="Message", exact=True)
    expect(composer).to_be_disabled()
    expect(reader.locator("#composer-blocked")).to_have_text(READ_ONLY)

    set_collaborators(session.page, server, ui_conversation, ui_teammate.username)
    expect(composer).to_be_enabled()
    expect(reader.locator("#composer-blocked")).to_be_hidden()

    set_collaborators(session.page, server, ui_conversation, "")
    expect(composer).to_be_disabled()
    expect(reader.locator("#composer-blocked")).to_have_text(READ_ONLY)
    expect(reader.locator("#connection-status")).to_have_text("Connected")  # still reading
    assert not teammate_session.errors, teammate_session.errors
