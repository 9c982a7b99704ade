"""The admin's forms are ``novalidate`` (Django's), so a number field holding what the browser
cannot read as a number ("2e" half typed) was posted as "", as if cleared: a policy's tokens per
day typed so was saved blank, which is unlimited, with "changed successfully"; a model's price
was refused as "This field is required." beside the text the admin had typed. The form is not
sent: the field says it holds no number, and nothing stored changes."""

from __future__ import annotations

from decimal import Decimal

from playwright.sync_api import Browser, Page, expect

from conversations.models import ModelConfig, Policy
from tests.support import make_user
from tests.ui.conftest import LiveServer, new_session

NOT_A_NUMBER = "Not a number: correct it, or clear the field."


def _type_what_cannot_be_read(page: Page, label: str, typed: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill("")
    field.press_sequentially(typed)  # as an admin types it: fill() refuses such text
    assert field.evaluate("field => field.validity.badInput")


def test_a_policys_limit_typed_as_no_number_is_not_saved_as_unlimited(
    browser: Browser, chat_server: LiveServer, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True)
    team = Policy.objects.create(name="Team", tokens_per_day=1000)
    admin = new_session(browser, chat_server, username="root")
    page = admin.page
    try:
        page.goto(f"{chat_server.url}/admin/conversations/policy/{team.pk}/change/")
        _type_what_cannot_be_read(page, "Tokens per day:", "2e")
        page.get_by_role("button", name="Save", exact=True).click()

        row = page.locator(".form-row.field-tokens_per_day")
        expect(row.locator(".errorlist")).to_have_text(NOT_A_NUMBER)
        expect(page.get_by_label("Tokens per day:", exact=True)).to_be_focused()
        expect(page.get_by_label("Tokens per day:", exact=True)).to_have_attribute(
            "aria-invalid", "true"
        )
        assert page.url.endswith(f"/policy/{team.pk}/change/")  # not sent
        team.refresh_from_db()
        assert team.tokens_per_day == 1000

        # Corrected, it saves, and the error goes.
        page.get_by_label("Tokens per day:", exact=True).fill("2000")
        page.get_by_role("button", name="Save and continue editing").click()
        expect(page.locator(".messagelist .success")).to_be_visible()
        expect(page.locator(".errorlist")).to_have_count(0)
        team.refresh_from_db()
        assert team.tokens_per_day == 2000
    finally:
        page.context.close()


def test_a_models_price_typed_as_no_number_is_said_so(
    browser: Browser, chat_server: LiveServer, ui_chat_model: ModelConfig
) -> None:
    make_user("root", is_staff=True, is_superuser=True)
    before = ui_chat_model.price_output
    admin = new_session(browser, chat_server, username="root")
    page = admin.page
    try:
        page.goto(f"{chat_server.url}/admin/conversations/modelconfig/{ui_chat_model.pk}/change/")
        _type_what_cannot_be_read(page, "Price output:", "0.3e")
        page.get_by_role("button", name="Save", exact=True).click()

        expect(page.locator(".form-row.field-price_output .errorlist")).to_have_text(NOT_A_NUMBER)
        ui_chat_model.refresh_from_db()
        assert ui_chat_model.price_output == before != Decimal("0.3")
    finally:
        page.context.close()
