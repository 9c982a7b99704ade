"""With no team at all, Alice's shared conversation is everyone's to read, and Bob has it open
and listed. The admin creates the first team: the conversation is shared with no team now, so
with no one but Alice, and Bob's pages say so at once (unlisted, "no longer shared"). The admin
deletes that team, the last: it is everyone's again, and Bob's pages list it and bring it back.
Neither change reached his pages: they went on listing and showing what he could not open."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from conversations.models import Conversation, Team, User
from tests.support import make_user
from tests.ui.conftest import LiveServer, Session, new_session
from tests.ui.test_a_conversation_deleted_in_one_tab_leaves_the_others import watched

pytestmark = pytest.mark.timeout(180)

UNSHARED = "This conversation is no longer shared with you."


def test_the_first_team_ends_bobs_view_and_the_last_teams_delete_brings_it_back(
    browser: Browser,
    chat_server: LiveServer,
    teammate_session: Session,
    ui_user: User,
    ui_conversation: Conversation,
) -> None:
    Conversation.objects.filter(pk=ui_conversation.pk).update(visibility="team")
    make_user("root", is_staff=True, is_superuser=True)
    server = chat_server
    welcome = teammate_session.page
    welcome.goto(f"{server.url}/")
    welcome.wait_for_function("() => window.accountSocket?.ready === true")
    shared = welcome.locator(".shared-list > li")
    expect(shared).to_have_text(["Deploy notes"])
    errors: list[str] = []
    reader = watched(welcome.context.new_page(), errors)
    reader.goto(f"{server.url}/c/{ui_conversation.id}/")
    status = reader.locator("#connection-status")
    expect(status).to_have_text("Connected")

    admin = new_session(browser, server, username="root")
    try:
        page = admin.page
        page.goto(f"{server.url}/admin/conversations/team/add/")
        page.get_by_label("Name:").fill("ops")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".messagelist")).to_contain_text("was added successfully")

        expect(shared).to_have_count(0)
        expect(status).to_have_text(UNSHARED)
        expect(reader.locator(".deleted-notice")).to_have_text(
            f"{UNSHARED} Back to your conversations"
        )

        team = Team.objects.get(name="ops")
        page.goto(f"{server.url}/admin/conversations/team/{team.pk}/delete/")
        page.get_by_role("button", name="Yes, I\u2019m sure").click()
        expect(page.locator(".messagelist")).to_contain_text("was deleted successfully")

        expect(shared).to_have_text(["Deploy notes"])
        expect(status).to_have_text("Connected")  # the page came back by itself
        expect(reader.locator(".deleted-notice")).to_have_count(0)
    finally:
        admin.page.context.close()
    assert not teammate_session.errors, teammate_session.errors
    assert not errors, errors
