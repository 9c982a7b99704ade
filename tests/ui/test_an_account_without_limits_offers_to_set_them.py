"""An account with no limits of its own offers, in its Limits section, a link that says what it
is for: Django's "Add another Limits" said nothing of suspending the user (there, once the link
is followed), nor that there was not a first one."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import User, UserLimits
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def test_the_link_names_limits_and_suspension_and_adds_the_form(
    browser: Browser, chat_server: LiveServer, ui_user: User
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    admin = new_session(browser, chat_server, username="root")
    page = admin.page
    try:
        page.goto(f"{chat_server.url}/admin/conversations/user/{ui_user.pk}/change/")
        section = page.locator("#limits-group")
        expect(section.get_by_text("Add another", exact=False)).to_have_count(0)
        section.get_by_role("button", name="Set this user's own limits, or suspend them").click()
        limits = page.locator("#limits-0")
        limits.get_by_label("Suspended").check()
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
        assert UserLimits.objects.get(user=ui_user).suspended
        assert not [e for e in admin.errors if "favicon" not in e], admin.errors
    finally:
        page.context.close()
