"""On a user's admin page, a number typed for a limit chooses "Limit to", and choosing
"Unlimited" (or "Inherit from the policy") clears the number: what is saved is what the page
showed, with no error to correct for a number left behind."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import UNLIMITED, ModelConfig, Policy, User, UserLimits
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def test_a_typed_number_chooses_limit_to_and_unlimited_clears_the_number(
    browser: Browser, chat_server: LiveServer, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    # The default policy the page names, as this test needs it (the seeded one may be gone:
    # other transactional tests flush the table, and only the model registry is put back).
    Policy.objects.filter(is_default=True).delete()
    Policy.objects.filter(name="Default").delete()
    Policy.objects.create(name="Default", is_default=True, tokens_per_month=20_000_000)
    UserLimits.objects.create(user=ui_user, tokens_per_day=500)
    admin = new_session(browser, chat_server, username="root")
    try:
        page = admin.page
        page.goto(f"{chat_server.url}/admin/conversations/user/{ui_user.pk}/change/")
        limits = page.locator("#limits-0")  # not the hidden template of an added form
        day = limits.get_by_label("Tokens per day:", exact=True)
        day_number = limits.get_by_label("Tokens per day: the limit")
        expect(day).to_have_value("number")
        expect(day_number).to_have_value("500")
        day.select_option(label="Unlimited")
        expect(day_number).to_have_value("")

        month = limits.get_by_label("Tokens per month:", exact=True)
        expect(month).to_have_value("inherit")
        # What "inherit" gives is said under the choice, and read with it by a screen reader.
        expect(month).to_have_accessible_description(
            "Inherits: 20,000,000 from the default policy “Default”"
        )
        admin.screenshot("admin-user-limits")
        limits.get_by_label("Tokens per month: the limit").fill("7000")
        expect(month).to_have_value("number")

        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
        row = UserLimits.objects.get(user=ui_user)
        assert (row.override("tokens_per_day"), row.override("tokens_per_month")) == (
            UNLIMITED,
            7000,
        )
        # The admin's pages name no icon, and the browser's own ask for /favicon.ico fails (it
        # is not among the page's responses, which are all checked).
        favicon = "Failed to load resource: the server responded with a status of 404 (Not Found)"
        assert [error for error in admin.errors if error != favicon] == []
    finally:
        admin.page.context.close()
