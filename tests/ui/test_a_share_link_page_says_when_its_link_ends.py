"""A share link's page that is open when its link is revoked, or when the admin switches public
links off under an anonymous viewer, says so plainly and stops: no "Writing…" left spinning, no
reconnecting, and the transcript stays as it was. The anonymous viewer is told to sign in (not
that the link ended), and signing in brings them back to the link, live."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from conversations import sharing
from conversations.models import Conversation, SharingSettings
from tests.support import PASSWORD, make_user
from tests.ui.conftest import LiveServer, Session, new_session, words


def watch(page: Page, url: str) -> list[str]:
    """Open the link's page; the websockets it opens are listed."""
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(url)
    expect(page.locator("#connection-status")).to_have_text("Live")
    return sockets


def start_a_long_reply(owner: Page, viewer: Page) -> None:
    composer = owner.get_by_role("textbox", name="Message", exact=True)
    composer.fill(f"Go [[sim: tokens_per_s=15 say={words(80, 'slow')}]]")
    composer.press("Enter")
    expect(viewer.get_by_role("article", name="DeepSeek Chat")).to_contain_text("slow2")


def test_revoking_the_link_tells_its_viewer_and_the_page_stops(
    browser: Browser, chat_server: LiveServer, session: Session, ui_conversation: Conversation
) -> None:
    make_user("bob")
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)
    owner = session.page
    session.open(ui_conversation)
    viewer = new_session(browser, chat_server, username="bob")
    page = viewer.page
    try:
        sockets = watch(page, f"{chat_server.url}/s/{token}/")
        start_a_long_reply(owner, page)

        settings = owner.context.new_page()
        settings.goto(f"{chat_server.url}/c/{ui_conversation.id}/sharing/")
        settings.get_by_role("button", name="Revoke").click()
        expect(settings.get_by_text("revoked")).to_be_visible()

        alert = page.get_by_role("alert")
        expect(alert).to_have_text(
            re.compile("This link no longer works: it was revoked or it expired")
        )
        expect(page.locator("#connection-status")).to_have_text("Not live")
        reply = page.get_by_role("article", name="DeepSeek Chat")
        expect(reply).not_to_have_class(re.compile(r"\bis-streaming\b"))
        expect(reply.locator(".message-state")).to_have_count(0)
        expect(reply).to_contain_text("This reply was still being written.")
        expect(page.get_by_role("button", name="Continue in my chats")).to_be_hidden()
        text = reply.locator(".message-content").inner_text()
        page.wait_for_timeout(2500)  # the reply goes on for the owner; not here
        assert reply.locator(".message-content").inner_text() == text
        # No reconnecting (the link's socket; a signed-in viewer's sidebar has the account's too).
        assert len([url for url in sockets if "/ws/conversations/" in url]) == 1, sockets
        viewer.screenshot("share-link-revoked")
    finally:
        page.context.close()
    assert not [e for e in viewer.errors if "/ws/" not in e], viewer.errors


def test_switching_public_links_off_tells_the_anonymous_viewer(
    browser: Browser, chat_server: LiveServer, session: Session, ui_conversation: Conversation
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    SharingSettings.objects.update_or_create(pk=1, defaults={"allow_public_links": True})
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)
    session.open(ui_conversation)
    context = browser.new_context()
    page = context.new_page()
    admin = new_session(browser, chat_server, username="root")
    try:
        sockets = watch(page, f"{chat_server.url}/s/{token}/")
        expect(page.get_by_role("button", name="Continue in my chats")).to_have_count(0)
        start_a_long_reply(session.page, page)

        admin.page.goto(f"{chat_server.url}/admin/conversations/sharingsettings/1/change/")
        admin.page.get_by_label("Allow public links").uncheck()
        admin.page.get_by_role("button", name="Save", exact=True).click()

        # Not "the link ended": signing in would bring it back, and the page says so.
        alert = page.get_by_role("alert")
        expect(alert).to_have_text(re.compile("This link now needs you to sign in"))
        expect(alert).not_to_contain_text("revoked")
        expect(page.locator("#connection-status")).to_have_text("Not live")
        page.wait_for_timeout(2500)
        # One more try, as after any 4401 (the browser may have signed in meanwhile): refused.
        assert len(sockets) == 2, sockets

        alert.get_by_role("link", name="Sign in to follow it again").click()
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{chat_server.url}/s/{token}/")
        expect(page.locator("#connection-status")).to_have_text("Live")
        expect(page.get_by_role("button", name="Continue in my chats")).to_be_visible()
    finally:
        context.close()
        admin.page.context.close()
