"""A conversation deleted in one tab leaves the sidebar of the user's other tabs at once, the
welcome page's too; a tab showing it says it was deleted (composer disabled, a link back) without
an error; and Undo brings it back everywhere. The other tabs kept listing it, and the one showing
it went on as if it were live."""

from __future__ import annotations

import re
from typing import Any

from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from conversations.models import Conversation
from tests.support import make_user
from tests.ui.conftest import Session, new_session


def watched(page: Page, errors: list[str]) -> Page:
    """``page``, its console errors, failed requests and uncaught exceptions kept in
    ``errors`` (as the session's first page's are)."""
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    return page


def own_list(page: Page) -> Any:
    sidebar = page.get_by_role("complementary", name="Conversations")
    return sidebar.locator(".conversation-list:not(.shared-list) > li[data-id]")


def test_a_delete_reaches_the_other_tabs_and_its_undo_too(
    session: Session, ui_conversation: Conversation
) -> None:
    doomed = Conversation.objects.create(
        owner=ui_conversation.owner, model=ui_conversation.model, title="Old plan"
    )
    page = session.page
    session.open(ui_conversation)
    errors: list[str] = []
    showing_it = watched(page.context.new_page(), errors)
    showing_it.goto(f"{session.server.url}/c/{doomed.id}/")
    expect(showing_it.locator("#connection-status")).to_have_text("Connected")
    welcome = watched(page.context.new_page(), errors)
    welcome.goto(f"{session.server.url}/")
    tabs = {"the deleting tab": page, "the tab showing it": showing_it, "the welcome page": welcome}
    for name, tab in tabs.items():
        expect(own_list(tab), f"{name} lists both").to_have_count(2)
    # The welcome page's socket is open before the delete (it connects once loaded).
    welcome.wait_for_function("() => window.accountSocket?.ready === true")

    entry = own_list(page).filter(has_text="Old plan")
    entry.hover()
    entry.get_by_role("button", name="Delete Old plan").click()

    for name, tab in tabs.items():
        expect(own_list(tab), f"{name} unlists it").to_have_count(1)
        expect(own_list(tab).get_by_role("link"), name).to_have_text(["Deploy notes"])
    notice = showing_it.get_by_role("status").filter(has_text="This conversation was deleted.")
    expect(notice).to_be_visible()
    back = notice.get_by_role("link", name="Back to your conversations")
    expect(back).to_have_attribute("href", "/")
    expect(showing_it.get_by_role("textbox", name="Message", exact=True)).to_be_disabled()
    expect(showing_it.get_by_role("button", name="Send", exact=True)).to_be_disabled()
    expect(showing_it.get_by_role("button", name="Settings")).to_be_hidden()

    page.get_by_role("button", name="Undo").click()
    expect(own_list(page)).to_have_count(2)
    expect(own_list(welcome)).to_have_count(2)
    expect(own_list(welcome).first.get_by_role("link")).to_have_text("Old plan")
    # The tab that showed it shows it live again.
    expect(showing_it.locator("#connection-status")).to_have_text("Connected")
    expect(showing_it.get_by_role("textbox", name="Message", exact=True)).to_be_enabled()
    expect(showing_it.locator(".deleted-notice")).to_have_count(0)
    expect(own_list(showing_it)).to_have_count(2)
    assert not session.errors, session.errors
    assert not errors, errors


def test_a_tab_that_learns_of_the_delete_from_its_socket_alone_unlists_it(
    session: Session, ui_conversation: Conversation
) -> None:
    """The tab showing a conversation may learn that it was deleted from its socket's close
    (4404) alone, without the account's announcement (``conversation.deleted``): a delete sends
    the conversation's sockets a re-check and the owner's tabs the announcement apart, each
    relayed on its own, and the re-check may close the socket first; or the tab was offline
    during the delete, and its reconnect is refused. The account's socket it then opens joins
    too late to hear it. The tab said "deleted" and still listed it, for good. Here the tab is
    offline while the conversation is deleted, and reconnects."""
    doomed = Conversation.objects.create(
        owner=ui_conversation.owner, model=ui_conversation.model, title="Old plan"
    )
    page = session.page
    session.open(doomed)
    expect(own_list(page)).to_have_count(2)
    page.evaluate("() => { window.chatSocket.closed = true; window.chatSocket.drop(); }")
    page.wait_for_function("() => window.chatSocket.socket === null")

    Conversation.objects.filter(pk=doomed.pk).update(deleted_at=timezone.now())
    page.evaluate("() => { window.chatSocket.closed = false; window.chatSocket.connect(); }")

    notice = page.get_by_role("status").filter(has_text="This conversation was deleted.")
    expect(notice).to_be_visible()
    expect(own_list(page)).to_have_count(1)
    expect(own_list(page).get_by_role("link")).to_have_text(["Deploy notes"])
    assert not session.errors, session.errors


def test_a_conversation_deleted_in_the_admin_leaves_the_tab_showing_it(
    session: Session, browser: Browser, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    make_user("sam", is_staff=True, is_superuser=True)
    admin = new_session(browser, session.server, username="sam")
    admin.page.goto(
        f"{session.server.url}/admin/conversations/conversation/{ui_conversation.pk}/delete/"
    )
    admin.page.get_by_role("button", name=re.compile(r"^Yes, I.m sure$")).click()
    expect(admin.page.locator(".messagelist")).to_contain_text("deleted successfully")

    notice = page.get_by_role("status").filter(has_text="This conversation was deleted.")
    expect(notice).to_be_visible()
    expect(own_list(page)).to_have_count(0)
    expect(page.get_by_role("textbox", name="Message", exact=True)).to_be_disabled()
    notice.get_by_role("link", name="Back to your conversations").click()
    page.wait_for_url(f"{session.server.url}/")
    expect(page.get_by_text("No conversations yet.")).to_be_visible()
    assert not session.errors, session.errors
