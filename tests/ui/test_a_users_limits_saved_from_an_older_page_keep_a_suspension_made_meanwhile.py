"""Two admins on the same account's page: the first suspends the user; the second, whose page
was opened before, changes the user's tokens per day. Saved as Django saves it, the second
page wrote back every limit as it had read it: the suspension was lifted without a word
("changed successfully" on both), and the user could chat again. The limits the second admin
left alone keep the first one's values; a limit both changed is refused, naming the value it
has now, and saving again then keeps the second admin's value."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from conversations.models import UNLIMITED, ModelConfig, Policy, UserLimits
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def _save(page: Page) -> None:
    page.get_by_role("button", name="Save and continue editing").click()


def test_a_save_from_an_older_page_keeps_a_suspension_made_meanwhile(
    browser: Browser, chat_server: LiveServer, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True)
    carol = make_user("carol")
    UserLimits.objects.create(user=carol, tokens_per_day=5000)
    first = new_session(browser, chat_server, username="root").page
    second = first.context.new_page()
    url = f"{chat_server.url}/admin/conversations/user/{carol.pk}/change/"
    try:
        first.goto(url)
        second.goto(url)  # opened before the first page saves

        first.locator("#id_limits-0-suspended").check()
        _save(first)
        expect(first.locator(".messagelist .success")).to_be_visible()

        second.locator("input[name='limits-0-tokens_per_day']").fill("6000")
        _save(second)
        expect(second.locator(".messagelist .success")).to_be_visible()
        limits = UserLimits.objects.get(user=carol)
        assert limits.suspended
        assert limits.override("tokens_per_day") == 6000
        expect(second.locator("#id_limits-0-suspended")).to_be_checked()

        # Both change the same limit: the older page is refused, naming the value now.
        first.goto(url)
        second.goto(url)
        first.locator("input[name='limits-0-tokens_per_day']").fill("1500")
        first.locator("select[name='limits-0-max_output_tokens_choice']").select_option("unlimited")
        _save(first)
        expect(first.locator(".messagelist .success")).to_be_visible()
        second.locator("select[name='limits-0-tokens_per_day_choice']").select_option("unlimited")
        _save(second)
        expect(second.locator(".errorlist").first).to_contain_text(
            "Changed by someone else since this page was opened, to 1,500; nothing was saved."
        )
        limits.refresh_from_db()
        assert limits.override("tokens_per_day") == 1500
        # The page shows the other change it left alone, and keeps what was chosen here.
        expect(second.locator("select[name='limits-0-max_output_tokens_choice']")).to_have_value(
            "unlimited"
        )
        expect(second.locator("select[name='limits-0-tokens_per_day_choice']")).to_have_value(
            "unlimited"
        )

        _save(second)  # again, deliberately
        expect(second.locator(".messagelist .success")).to_be_visible()
        limits.refresh_from_db()
        assert limits.override("tokens_per_day") == UNLIMITED
        assert limits.override("max_output_tokens") == UNLIMITED
        assert limits.suspended
    finally:
        first.context.close()
