"""A number field holding what the browser cannot read as a number ("1e" half typed, "1e400"
past any float) has the value "", as if left blank: saved so, it unset what was stored.
The field says so, naming the parameter, and nothing is saved."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session


@pytest.mark.parametrize("typed", ["1e", "1e400"])
def test_a_number_the_browser_cannot_read_is_refused_and_the_saved_one_kept(
    session: Session, ui_conversation: Conversation, typed: str
) -> None:
    ui_conversation.params = {"temperature": 0.7}
    ui_conversation.save(update_fields=["params"])
    page = session.page
    session.open(ui_conversation)
    page.get_by_role("button", name="Settings").click()
    dialog = page.get_by_role("dialog", name="Conversation settings")
    temperature = dialog.get_by_label("Temperature")
    expect(temperature).to_have_value("0.7")

    temperature.fill("")
    temperature.press_sequentially(typed)  # typed as a user does: fill() refuses such text
    assert temperature.evaluate("field => field.validity.badInput")
    dialog.get_by_role("button", name="Save settings").click()

    expect(dialog.locator("#err-temperature")).to_have_text("temperature must be a number.")
    expect(temperature).to_have_attribute("aria-invalid", "true")
    expect(dialog).to_be_visible()
    ui_conversation.refresh_from_db()
    assert ui_conversation.params == {"temperature": 0.7}
