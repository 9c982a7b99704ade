"""Two admins on the same policy's page: the first cuts its tokens per day and allows another
model; the second, whose page was opened before, changes its requests per minute. Saved as
Django saves it, the second page wrote back every field as it had read it: the day's cut and
the model were undone without a word ("changed successfully" on both). The fields the second
admin left alone keep the first one's values; a field both changed is refused, naming the
value it has now, and saving again then keeps the second admin's value and nothing else."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from conversations.models import ModelConfig, Policy
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def _save(page: Page) -> None:
    page.get_by_role("button", name="Save and continue editing").click()


def test_a_save_from_an_older_page_keeps_what_another_admin_saved_meanwhile(
    browser: Browser, chat_server: LiveServer, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    reasoner = ModelConfig.objects.get(name="deepseek-reasoner")
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True)
    team = Policy.objects.create(
        name="Team", all_models=False, tokens_per_day=100_000, requests_per_minute=5
    )
    team.allowed_models.set([ui_chat_model])
    first = new_session(browser, chat_server, username="root").page
    second = first.context.new_page()
    url = f"{chat_server.url}/admin/conversations/policy/{team.pk}/change/"
    try:
        first.goto(url)
        second.goto(url)  # opened before the first page saves

        first.get_by_label("Tokens per day:", exact=True).fill("4000")
        first.locator("#id_allowed_models_from").select_option(reasoner.name)
        first.locator("#id_allowed_models_add").click()
        _save(first)
        expect(first.locator(".messagelist .success")).to_be_visible()

        second.get_by_label("Requests per minute:", exact=True).fill("6")
        _save(second)
        expect(second.locator(".messagelist .success")).to_be_visible()
        team.refresh_from_db()
        assert (team.tokens_per_day, team.requests_per_minute) == (4000, 6)
        assert set(team.allowed_models.all()) == {ui_chat_model, reasoner}

        # Both change the same field: the older page is refused, naming the value now.
        first.get_by_label("Tokens per day:", exact=True).fill("5000")
        first.get_by_label("Concurrent streams:", exact=True).fill("2")
        _save(first)
        expect(first.locator(".messagelist .success")).to_be_visible()
        second.get_by_label("Tokens per day:", exact=True).fill("9000")
        _save(second)
        expect(second.locator(".form-row.field-tokens_per_day .errorlist")).to_contain_text(
            "Changed by someone else since this page was opened, to 5,000; nothing was saved."
        )
        team.refresh_from_db()
        assert (team.tokens_per_day, team.concurrent_streams) == (5000, 2)
        # The page shows the other change it left alone, and keeps what was typed here.
        expect(second.get_by_label("Concurrent streams:", exact=True)).to_have_value("2")
        expect(second.get_by_label("Tokens per day:", exact=True)).to_have_value("9000")

        _save(second)  # again, deliberately
        expect(second.locator(".messagelist .success")).to_be_visible()
        team.refresh_from_db()
        assert (team.tokens_per_day, team.concurrent_streams) == (9000, 2)
        assert team.requests_per_minute == 6
        assert set(team.allowed_models.all()) == {ui_chat_model, reasoner}
    finally:
        first.context.close()
