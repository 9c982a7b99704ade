"""Two admins on the same model's page: the first corrects a dated price's output; the second,
whose page was opened before, changes the model's display name. Django saves an inline row
whose posted values differ from the stored ones, so the second page wrote the price back as it
had read it: the correction was undone without a word, and every call since costed at the old
price. A row the second admin left alone is left as stored."""

from __future__ import annotations

import datetime
from decimal import Decimal

from playwright.sync_api import Browser, Page, expect

from conversations.models import ModelConfig, ModelPrice
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session


def _save(page: Page) -> None:
    page.get_by_role("button", name="Save and continue editing").click()


def test_a_price_corrected_meanwhile_stays_corrected(
    browser: Browser, chat_server: LiveServer, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    price = ModelPrice.objects.create(
        model=ui_chat_model,
        effective_from=datetime.date(2026, 1, 1),
        input_cache_hit=Decimal("0.0100"),
        input_cache_miss=Decimal("0.2000"),
        output=Decimal("0.4000"),
    )
    first = new_session(browser, chat_server, username="root").page
    second = first.context.new_page()
    url = f"{chat_server.url}/admin/conversations/modelconfig/{ui_chat_model.pk}/change/"
    try:
        first.goto(url)
        second.goto(url)  # opened before the first page saves

        first.locator("input[name='prices-0-output']").fill("0.5000")
        _save(first)
        expect(first.locator(".messagelist .success")).to_be_visible()

        second.get_by_label("Display name:").fill("DeepSeek Chat (fast)")
        _save(second)
        expect(second.locator(".messagelist .success")).to_be_visible()
        price.refresh_from_db()
        assert price.output == Decimal("0.5000")
        ui_chat_model.refresh_from_db()
        assert ui_chat_model.display_name == "DeepSeek Chat (fast)"
    finally:
        first.context.close()
