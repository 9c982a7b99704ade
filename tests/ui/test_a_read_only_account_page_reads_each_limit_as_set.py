"""Staff who may only view users open Alice's admin page: her Limits are read, not fields, each
as it is set (her own number, "Unlimited", or what it inherits and from where). The page showed
"-" for her unlimited limit and for those left to the policy alike."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from playwright.sync_api import Browser, expect

from conversations.models import UNLIMITED, ModelConfig, Policy, User, UserLimits
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def test_a_viewer_reads_each_limit_as_set_with_nothing_to_edit(
    browser: Browser, chat_server: LiveServer, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    viewer = make_user("vera", is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(codename__in=["view_user", "view_userlimits"])
    )
    Policy.objects.filter(is_default=True).delete()
    Policy.objects.filter(name="Default").delete()
    Policy.objects.create(name="Default", is_default=True, tokens_per_month=20_000_000)
    limits = UserLimits(user=ui_user)
    limits.set_override("tokens_per_day", 500)
    limits.set_override("max_output_tokens", UNLIMITED)
    limits.save()
    session = new_session(browser, chat_server, username="vera")
    try:
        page = session.page
        page.goto(f"{chat_server.url}/admin/conversations/user/{ui_user.pk}/change/")
        section = page.locator("#limits-group")
        expect(section.get_by_role("combobox")).to_have_count(0)
        expect(section.get_by_role("spinbutton")).to_have_count(0)
        expect(section.locator(".fieldBox.field-tokens_per_day_as_set .readonly")).to_have_text(
            "500 (this user's own)"
        )
        expect(section.locator(".fieldBox.field-max_output_tokens_as_set .readonly")).to_have_text(
            "Unlimited (this user's own)"
        )
        expect(section.locator(".fieldBox.field-tokens_per_month_as_set .readonly")).to_have_text(
            "Inherits: 20,000,000 from the default policy “Default”"
        )
        expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)
        # Nor is a password reset offered (it led to a 403).
        expect(page.get_by_role("link", name="Reset password")).to_have_count(0)
        expect(page.locator(".field-password")).to_contain_text("algorithm")
        session.screenshot("admin-user-limits-read-only")
    finally:
        session.page.context.close()
