"""An admin makes a policy the default; another, whose page of that policy was opened before,
changes its requests per minute. The save was refused: "One policy is always the default:
tick “Is default” on another policy instead", about a box the second admin had not touched.
Left alone, "Is default" keeps what was saved meanwhile, as any field does, and the save goes
through."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from conversations.models import ModelConfig, Policy
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def _save(page: Page) -> None:
    page.get_by_role("button", name="Save and continue editing").click()


def test_a_policy_made_default_meanwhile_is_saved_from_an_older_page(
    browser: Browser, chat_server: LiveServer, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True)
    team = Policy.objects.create(name="Team", requests_per_minute=5)
    first = new_session(browser, chat_server, username="root").page
    second = first.context.new_page()
    url = f"{chat_server.url}/admin/conversations/policy/{team.pk}/change/"
    try:
        first.goto(url)
        second.goto(url)  # opened before the first page saves

        first.get_by_label("Is default").check()
        _save(first)
        expect(first.locator(".messagelist .success")).to_be_visible()

        second.get_by_label("Requests per minute:", exact=True).fill("6")
        _save(second)
        expect(second.locator(".messagelist .success")).to_be_visible()
        team.refresh_from_db()
        assert team.is_default and team.requests_per_minute == 6
        assert Policy.objects.filter(is_default=True).count() == 1
        expect(second.get_by_label("Is default")).to_be_checked()
    finally:
        first.context.close()
