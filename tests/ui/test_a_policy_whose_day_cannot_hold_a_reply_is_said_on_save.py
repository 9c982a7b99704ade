"""A policy whose tokens per day (or month) are fewer than one chat reply reserves is saved, but
the admin is told: no reply can be sent in the chat under it. Saved silently, its users read
"700 left today" in the composer, and each message was refused ("this request may need up to
2,023"), with nothing they could change."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import ModelConfig, Policy
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def test_the_admin_is_told_when_a_reply_cannot_fit_in_a_day(
    browser: Browser, chat_server: LiveServer, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    # The default policy made again through the table's sequence (the seeded one may be left
    # with an id the reset sequence gives again, or be gone: other tests flush the table).
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True)
    admin = new_session(browser, chat_server, username="root")
    page = admin.page
    try:
        page.goto(f"{chat_server.url}/admin/conversations/policy/add/")
        page.get_by_label("Name:").fill("Trial")
        page.get_by_label("All models").check()
        page.get_by_label("Tokens per day:").fill("700")
        page.get_by_label("Max output tokens:").fill("2000")
        page.get_by_role("button", name="Save and continue editing").click()
        expect(page.locator(".messagelist .warning")).to_have_text(
            "Tokens per day (700) is below what one chat reply reserves: its prompt and up to "
            "2,000 output tokens (“Max output tokens”, or the models' default output). No reply "
            "can be sent in the chat under this policy; only API calls that ask for fewer "
            "output tokens. Raise the limit or lower “Max output tokens”."
        )
        assert Policy.objects.get(name="Trial").tokens_per_day == 700  # saved all the same
        admin.screenshot("policy-day-below-a-reply")

        page.get_by_label("Max output tokens:").fill("500")
        page.get_by_role("button", name="Save and continue editing").click()
        expect(page.locator(".messagelist .success")).to_be_visible()
        expect(page.locator(".messagelist .warning")).to_have_count(0)
    finally:
        page.context.close()
