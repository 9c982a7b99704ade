"""A new API key, shown only once, has a Copy button: it had to be selected by hand in a read-only
field wider than a phone's screen."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import ApiKey, User
from tests.ui.conftest import LiveServer, new_session


def test_a_new_api_key_can_be_copied_in_one_click(
    browser: Browser, chat_server: LiveServer, ui_user: User
) -> None:
    session = new_session(
        browser,
        chat_server,
        viewport={"width": 375, "height": 740},
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = session.page
    try:
        page.goto(f"{chat_server.url}/settings/api-keys/")
        page.get_by_label("Name").fill("laptop scripts")
        page.get_by_role("button", name="Create key").click()
        secret = page.get_by_label("Key", exact=True).input_value()
        assert secret.startswith(ApiKey.objects.get(user=ui_user).prefix)
        page.get_by_role("button", name="Copy the key").click()
        expect(page.get_by_role("status").filter(has_text="Copied.")).to_be_visible()
        assert page.evaluate("navigator.clipboard.readText()") == secret
        assert not session.errors, session.errors
    finally:
        page.context.close()
