"""A new read-only link, shown only once, has a Copy button and fits a phone's screen: it was a
line of code wider than the page (the whole page scrolled sideways) to be selected by hand. Each
link's Revoke stays on its line instead of a line of its own, centred."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import Conversation, ShareLink
from tests.ui.conftest import LiveServer, new_session


def test_a_new_share_link_can_be_copied_in_one_click(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    for width, height in ((390, 844), (1280, 800)):
        session = new_session(
            browser,
            chat_server,
            viewport={"width": width, "height": height},
            permissions=["clipboard-read", "clipboard-write"],
        )
        page = session.page
        try:
            page.goto(f"{chat_server.url}/c/{ui_conversation.id}/sharing/")
            page.get_by_role("button", name="Create link").click()
            url = page.get_by_label("New link").input_value()
            link = ShareLink.objects.filter(conversation=ui_conversation).latest("created_at")
            assert url.startswith(f"{chat_server.url}/s/"), url
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.get_by_role("button", name="Copy the link").click()
            expect(page.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
            assert page.evaluate("navigator.clipboard.readText()") == url

            item = page.locator(".share-links li").first
            revoke = item.get_by_role("button", name="Revoke")
            item_box, revoke_box = item.bounding_box(), revoke.bounding_box()
            assert item_box and revoke_box
            line = item.evaluate("li => parseFloat(getComputedStyle(li).lineHeight)")
            # On the item's last line, after its text, not centred on a line below it.
            assert revoke_box["y"] + revoke_box["height"] <= item_box["y"] + item_box["height"] + 1
            assert revoke_box["height"] <= line + 2, (revoke_box, line)
            if width == 1280:
                assert abs(revoke_box["y"] - item_box["y"]) <= line / 2, (revoke_box, item_box)
            revoke.click()
            link.refresh_from_db()
            assert link.revoked_at is not None
            assert not session.errors, session.errors
        finally:
            page.context.close()
