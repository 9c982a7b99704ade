"""Bob's pages list what Alice shares with their team as it is now, without a reload: her
sharing it shows in his sidebar's "Shared with you" and on the team page; her renaming it
retitles it there and in his search results; her making it private or deleting it takes it out
of all three at once. They stayed as they were loaded: a conversation made private stayed
listed (and found) on a teammate's open pages, one just shared never showed."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from conversations.models import Conversation, Team
from tests.ui.conftest import LiveServer, Session
from tests.ui.test_a_conversation_deleted_in_one_tab_leaves_the_others import watched

pytestmark = pytest.mark.timeout(180)


def set_visibility(
    page: Page, server: LiveServer, conversation: Conversation, shared: bool
) -> None:
    page.goto(f"{server.url}/c/{conversation.id}/sharing/")
    choice = "Shared with the team" if shared else "Private"
    page.get_by_label(choice).check()
    page.get_by_role("button", name="Save visibility").click()
    expect(page.get_by_label(choice)).to_be_checked()


def test_a_teammates_sidebar_team_page_and_search_follow_the_owners_sharing(
    session: Session, teammate_session: Session, ui_team: Team, ui_conversation: Conversation
) -> None:
    server = session.server
    alice = session.page
    welcome = teammate_session.page
    welcome.goto(f"{server.url}/")
    welcome.wait_for_function("() => window.accountSocket?.ready === true")
    shared = welcome.locator(".shared-list > li")
    expect(welcome.get_by_role("heading", name="Shared with you")).to_be_hidden()
    errors: list[str] = []
    team_page = watched(teammate_session.page.context.new_page(), errors)
    team_page.goto(f"{server.url}/team/")
    team_page.wait_for_function("() => window.accountSocket?.ready === true")
    rows = team_page.locator("table.team-list tbody tr")
    expect(rows).to_have_text(["Nothing shared with you yet."])

    set_visibility(alice, server, ui_conversation, shared=True)
    expect(welcome.get_by_role("heading", name="Shared with you")).to_be_visible()
    expect(shared).to_have_text(["Deploy notes"])
    expect(rows.first.get_by_role("link")).to_have_text("Deploy notes")
    expect(rows.first).to_contain_text("Alice")

    search = watched(teammate_session.page.context.new_page(), errors)
    search.goto(f"{server.url}/search/?q=deploy&scope=team")
    search.wait_for_function("() => window.accountSocket?.ready === true")
    hits = search.locator(".search-hits > li")
    expect(hits.get_by_role("link")).to_have_text(["Deploy notes"])

    # Renamed in Alice's sidebar.
    alice.goto(f"{server.url}/c/{ui_conversation.id}/")
    session.wait_connected()
    sidebar = alice.get_by_role("complementary", name="Conversations")
    sidebar.get_by_role("button", name="Rename Deploy notes").click()
    field = sidebar.get_by_role("textbox", name="New title")
    field.fill("Deploy checklist")
    field.press("Enter")
    expect(shared).to_have_text(["Deploy checklist"])
    expect(rows.get_by_role("link")).to_have_text(["Deploy checklist"])
    expect(hits.get_by_role("link")).to_have_text(["Deploy checklist"])

    # Made private: gone from all three.
    set_visibility(alice, server, ui_conversation, shared=False)
    expect(shared).to_have_count(0)
    expect(welcome.get_by_role("heading", name="Shared with you")).to_be_hidden()
    expect(rows).to_have_text(["Nothing shared with you yet."])
    expect(hits).to_have_count(0)

    # Shared again, then deleted: listed, then gone.
    set_visibility(alice, server, ui_conversation, shared=True)
    expect(shared).to_have_text(["Deploy checklist"])
    expect(rows.get_by_role("link")).to_have_text(["Deploy checklist"])
    alice.goto(f"{server.url}/")
    entry = alice.locator(".conversation-list:not(.shared-list) > li").filter(
        has_text="Deploy checklist"
    )
    entry.hover()
    entry.get_by_role("button", name="Delete Deploy checklist").click()
    expect(shared).to_have_count(0)
    expect(rows).to_have_text(["Nothing shared with you yet."])
    expect(hits).to_have_count(0)

    # Brought back while their sockets were away (a change no one announces): read again on
    # reconnecting.
    Conversation.objects.filter(pk=ui_conversation.pk).update(deleted_at=None)
    for page in (welcome, team_page, search):
        page.evaluate("window.accountSocket.drop()")
    expect(shared).to_have_text(["Deploy checklist"])
    expect(rows.get_by_role("link")).to_have_text(["Deploy checklist"])
    expect(hits.get_by_role("link")).to_have_text(["Deploy checklist"])
    assert not teammate_session.errors, teammate_session.errors
    assert not errors, errors
