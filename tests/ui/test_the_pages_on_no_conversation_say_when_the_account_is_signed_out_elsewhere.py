"""The welcome page, the team page and search say "Signed out" at once when their session ends
elsewhere (here: the password changed in another browser), as the conversation page does. Their
account's socket was closed (``access_revoked``, 4401) and they said nothing: the page looked
signed in until "Start chat" was pressed."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.support import PASSWORD
from tests.ui.conftest import LiveServer, Session, new_session

SIGNED_OUT = "Signed out — sign in again to continue."
NEW_PASSWORD = "n3w-Passw0rd!x"


def test_the_pages_on_no_conversation_say_so_without_a_click(
    session: Session, browser: Browser, chat_server: LiveServer
) -> None:
    pages = [session.page, session.page.context.new_page(), session.page.context.new_page()]
    for page, path in zip(pages, ["/", "/team/", "/search/?q=deploy"], strict=True):
        page.goto(f"{chat_server.url}{path}")
        page.wait_for_function("() => window.accountSocket?.ready === true")
        expect(page.locator("#connection-status")).to_be_hidden()  # nothing to say meanwhile

    other = new_session(browser, chat_server)  # another computer changes the password
    other.page.goto(f"{chat_server.url}/accounts/password/")
    other.page.get_by_label("Old password").fill(PASSWORD)
    other.page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    other.page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    other.page.get_by_role("button", name="Change password").click()
    other.page.wait_for_url(f"{chat_server.url}/accounts/password/done/")

    for page in pages:
        status = page.get_by_role("status").filter(has_text="Signed out")
        expect(status).to_have_text(SIGNED_OUT)
        expect(status).to_be_visible()
    assert not session.errors, session.errors
    other.page.context.close()
