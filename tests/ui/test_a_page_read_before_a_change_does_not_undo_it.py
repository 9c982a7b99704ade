"""A tab reads its page again (a reconnect, ``account.updated``, the tab shown again) and its
lists become the read's. A read the server rendered before a conversation was deleted or
renamed elsewhere, answered after the announcement of that change reached the tab, put the
older list back — the deleted conversation listed again, the old title — for good: nothing
tells the tab again. So did the team page's read of its own rows (a conversation new to it
shared), a share ended meanwhile. Here the read is held in the browser: fetched from the server
before the change, handed to the page after the page has shown the change."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import APIResponse, Page, Route, expect

from conversations.models import Conversation, Team
from tests.ui.conftest import Session
from tests.ui.test_a_teammates_lists_follow_what_is_shared_with_them import set_visibility


def own_list(page: Page) -> Any:
    sidebar = page.get_by_role("complementary", name="Conversations")
    return sidebar.locator(".conversation-list:not(.shared-list) > li[data-id]")


class HeldRequest:
    """The page's next request for `url`, fetched from the server at once (what the server
    renders now) and handed to the page only when ``answer`` is called."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.route: Route | None = None
        self.response: APIResponse | None = None
        page.route(url, self.hold, times=1)

    def hold(self, route: Route) -> None:
        self.response = route.fetch()
        self.route = route

    def wait_held(self) -> None:
        while self.route is None:
            self.page.wait_for_timeout(50)

    def answer(self) -> None:
        assert self.route is not None and self.response is not None
        self.route.fulfill(response=self.response)


class HeldRead(HeldRequest):
    """The page's next read of itself (chat:sidebar-read), held so; ``answer`` returns once its
    lists were taken."""

    def __init__(self, page: Page, url: str) -> None:
        super().__init__(page, url)
        # Counted after app.js's own listeners (added first), so once the count moves the
        # read's lists were taken.
        page.evaluate(
            """() => {
              window.readsTaken = 0;
              document.addEventListener("chat:sidebar-read", () => { window.readsTaken += 1; });
            }"""
        )

    def answer(self) -> None:
        super().answer()
        self.page.wait_for_function("() => window.readsTaken === 1")


def test_a_delete_heard_while_the_welcome_page_was_read_stays_done(
    session: Session, ui_conversation: Conversation
) -> None:
    Conversation.objects.create(
        owner=ui_conversation.owner, model=ui_conversation.model, title="Old plan"
    )
    welcome = session.page
    welcome.goto(f"{session.server.url}/")
    expect(own_list(welcome)).to_have_count(2)
    welcome.wait_for_function("() => window.accountSocket?.ready === true")
    read = HeldRead(welcome, f"{session.server.url}/")
    welcome.evaluate('() => document.dispatchEvent(new CustomEvent("chat:account-updated"))')
    read.wait_held()

    other = welcome.context.new_page()
    other.goto(f"{session.server.url}/")
    entry = own_list(other).filter(has_text="Old plan")
    entry.hover()
    entry.get_by_role("button", name="Delete Old plan").click()
    expect(own_list(other)).to_have_count(1)
    expect(own_list(welcome)).to_have_count(1)

    read.answer()
    expect(own_list(welcome).get_by_role("link")).to_have_text(["Deploy notes"])
    assert not session.errors, session.errors


def test_a_rename_heard_while_a_conversation_page_was_read_stays_done(
    session: Session, ui_conversation: Conversation
) -> None:
    Conversation.objects.create(
        owner=ui_conversation.owner, model=ui_conversation.model, title="Old plan"
    )
    page = session.page
    session.open(ui_conversation)
    expect(own_list(page)).to_have_count(2)
    # A reconnect reads the conversation's page again (its sidebar with it).
    read = HeldRead(page, f"{session.server.url}/c/{ui_conversation.id}/")
    page.evaluate("() => window.chatSocket.drop()")
    read.wait_held()
    session.wait_connected()

    other = page.context.new_page()
    other.goto(f"{session.server.url}/")
    sidebar = other.get_by_role("complementary", name="Conversations")
    sidebar.get_by_role("button", name="Rename Old plan").click()
    field = sidebar.get_by_role("textbox", name="New title")
    field.fill("New plan")
    field.press("Enter")
    expect(own_list(other).filter(has_text="New plan")).to_have_count(1)
    expect(own_list(page).filter(has_text="New plan")).to_have_count(1)

    read.answer()
    expect(own_list(page).get_by_role("link")).to_have_text(["New plan", "Deploy notes"])
    assert not session.errors, session.errors


def shared_by_alice(
    session: Session, ui_conversation: Conversation, *titles: str
) -> list[Conversation]:
    """Alice's conversations `titles`, shared with the team (announced)."""
    made = []
    for title in titles:
        conversation = Conversation.objects.create(
            owner=ui_conversation.owner, model=ui_conversation.model, title=title
        )
        set_visibility(session.page, session.server, conversation, shared=True)
        made.append(conversation)
    return made


def open_team_page(teammate_session: Session) -> Any:
    """Bob's team page, its socket ready: its rows."""
    team_page = teammate_session.page
    team_page.goto(f"{teammate_session.server.url}/team/")
    team_page.wait_for_function("() => window.accountSocket?.ready === true")
    return team_page.locator("table.team-list tbody tr")


def test_a_share_ended_while_the_team_page_was_read_stays_ended(
    session: Session, teammate_session: Session, ui_team: Team, ui_conversation: Conversation
) -> None:
    """The team page reads its rows itself when a conversation new to it is shared (placed by
    the server's order and filter): the same holds for that read."""
    ending = shared_by_alice(session, ui_conversation, "Ending", "Kept")[0]
    rows = open_team_page(teammate_session)
    expect(rows).to_have_count(2)

    read = HeldRequest(teammate_session.page, f"{session.server.url}/team/")
    shared_by_alice(session, ui_conversation, "Old plan")  # new to it: the team page reads itself
    read.wait_held()
    set_visibility(session.page, session.server, ending, shared=False)
    expect(rows.filter(has_text="Ending")).to_have_count(0)

    read.answer()
    expect(rows.filter(has_text="Old plan")).to_have_count(1)  # the read was taken
    expect(rows.get_by_role("link")).to_have_text(["Old plan", "Kept"])
    assert not teammate_session.errors, teammate_session.errors


def test_a_share_heard_while_the_team_page_was_read_is_listed(
    session: Session, teammate_session: Session, ui_team: Team, ui_conversation: Conversation
) -> None:
    """A second conversation shared while the team page reads itself for the first: it asked
    for a read of its own, which was dropped (one was under way), and that read lists only the
    first."""
    rows = open_team_page(teammate_session)
    expect(rows).to_have_text(["Nothing shared with you yet."])

    read = HeldRequest(teammate_session.page, f"{session.server.url}/team/")
    shared_by_alice(session, ui_conversation, "Old plan")
    read.wait_held()
    shared_by_alice(session, ui_conversation, "New plan")

    read.answer()
    expect(rows.get_by_role("link")).to_have_text(["New plan", "Old plan"])
    assert not teammate_session.errors, teammate_session.errors
