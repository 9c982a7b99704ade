"""A share link's page was sent with no Cache-Control (``Vary: Cookie`` only): after its link
was revoked, Back showed the transcript again from the browser's cache, without asking the
server (as a caching proxy could go on serving it to anyone holding the token). Now every
private page, a link's included, says ``Cache-Control: private, no-store``: Back asks the
server, which says the link has ended."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from playwright.sync_api import Browser, expect

from conversations import sharing
from conversations.models import Conversation, Message, SharingSettings
from tests.ui.conftest import LiveServer

SECRET = "The merger closes on Friday"


def test_back_to_a_revoked_links_page_asks_the_server(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    owner = ui_conversation.owner
    Message.objects.create(
        conversation=ui_conversation, role=Message.Role.USER, author=owner, content=SECRET
    )
    SharingSettings.objects.update_or_create(pk=1, defaults={"allow_public_links": True})
    link, token = sharing.create_share_link(owner, ui_conversation.id)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{chat_server.url}/s/{token}/")
        expect(page.locator(".shared-messages")).to_contain_text(SECRET)
        page.goto(f"{chat_server.url}/healthz")  # sets no cookie (Vary: Cookie)
        # As the owner's page does (outside Playwright's event loop: it tells the sockets).
        with ThreadPoolExecutor(1) as thread:
            thread.submit(sharing.revoke_share_link, owner, link.id).result()

        page.go_back()
        page.wait_for_load_state()
        assert page.url.endswith(f"/s/{token}/")
        assert SECRET not in page.content()
    finally:
        context.close()
