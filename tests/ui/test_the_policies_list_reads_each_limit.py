"""The policies' list reads each limit as the policy's form means it: a blank one is
"unlimited" (the list showed "-", as if it were not set) and a number is grouped (it read
"20000000" beside "1000000")."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from conversations.models import Policy
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def test_blank_limits_read_unlimited_and_numbers_are_grouped(
    browser: Browser, chat_server: LiveServer, transactional_db: None
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    Policy.objects.all().delete()
    Policy.objects.create(
        name="Default",
        is_default=True,
        tokens_per_day=1_000_000,
        tokens_per_month=20_000_000,
        max_output_tokens=8192,
        requests_per_minute=30,
        concurrent_streams=4,
    )
    Policy.objects.create(name="Research")  # every limit blank
    admin = new_session(browser, chat_server, username="root")
    page = admin.page
    try:
        page.goto(f"{chat_server.url}/admin/conversations/policy/")
        rows = page.locator("#result_list tbody tr")
        limits = "td.field-{}_shown"
        fields = [
            "tokens_per_day",
            "tokens_per_month",
            "max_output_tokens",
            "requests_per_minute",
            "concurrent_streams",
        ]
        default = rows.filter(has_text="Default")
        research = rows.filter(has_text="Research")
        for field, shown in zip(
            fields, ["1,000,000", "20,000,000", "8,192", "30", "4"], strict=True
        ):
            expect(default.locator(limits.format(field))).to_have_text(shown)
            expect(research.locator(limits.format(field))).to_have_text("unlimited")
        expect(page.get_by_role("columnheader", name="Tokens per day")).to_be_visible()
        # Sorted by a limit, as its column was before.
        page.get_by_role("link", name="Tokens per month").click()
        expect(page).to_have_url(f"{chat_server.url}/admin/conversations/policy/?o=4")
        admin.screenshot("policies-list")
    finally:
        page.context.close()
