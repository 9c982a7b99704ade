"""The Limits form the admin adds to an account ("Set this user's own limits, or suspend them")
has each field described by its help, as on an account that has them: Django's inline script
numbered the added form's ids, names and labels but not ``aria-describedby``, which still
named ``id_limits-__prefix__-…``: the help under each limit (what inheriting gives) was read
with none."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from conversations.models import User
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def test_each_field_of_the_added_form_is_described_by_its_help(
    browser: Browser, chat_server: LiveServer, ui_user: User
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    admin = new_session(browser, chat_server, username="root")
    page = admin.page
    try:
        page.goto(f"{chat_server.url}/admin/conversations/user/{ui_user.pk}/change/")
        section = page.locator("#limits-group")
        section.get_by_role("button", name="Set this user's own limits, or suspend them").click()
        limits = page.locator("#limits-0")
        expect(limits.get_by_role("combobox").first).to_be_visible()

        described = limits.locator("[aria-describedby]")
        assert described.count() >= 5  # at least each limit's choice
        for i in range(described.count()):
            field = described.nth(i)
            for help_id in (field.get_attribute("aria-describedby") or "").split():
                assert "__prefix__" not in help_id, help_id
                expect(page.locator(f"[id='{help_id}']")).to_have_count(1)
        choice = limits.locator("select[name='limits-0-tokens_per_day_choice']")
        # (What it inherits depends on the policies left by earlier tests: a flush deletes the
        # default one. That the help is read at all is the point.)
        expect(choice).to_have_accessible_description(re.compile(r"^Inherits: \S"))
        assert not [e for e in admin.errors if "favicon" not in e], admin.errors
    finally:
        page.context.close()
