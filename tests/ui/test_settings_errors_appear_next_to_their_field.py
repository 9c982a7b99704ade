from __future__ import annotations

import json

from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session


def test_settings_errors_appear_next_to_their_field_and_valid_settings_are_saved(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    page.get_by_role("button", name="Settings").click()
    dialog = page.get_by_role("dialog", name="Conversation settings")
    expect(dialog).to_be_visible()

    dialog.get_by_label("Temperature").fill("5")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog.locator("#err-temperature")).to_have_text("temperature must be in [0, 2].")
    expect(dialog.get_by_label("Temperature")).to_have_attribute("aria-invalid", "true")
    session.screenshot("settings-error")

    dialog.get_by_label("Temperature").fill("0.7")
    dialog.get_by_label("Tools (JSON list of function definitions)").fill("[{not json")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog.locator("#err-tools")).to_contain_text("Not valid JSON")
    expect(dialog.locator("#err-temperature")).to_be_empty()

    bad_tool = [{"type": "function", "function": {"name": "has space"}}]
    dialog.get_by_label("Tools (JSON list of function definitions)").fill(json.dumps(bad_tool))
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog.locator("#err-tools")).to_contain_text("function.name must match")

    dialog.get_by_label("Max tokens").fill("999999")
    good_tool = [{"type": "function", "function": {"name": "get_weather"}}]
    dialog.get_by_label("Tools (JSON list of function definitions)").fill(json.dumps(good_tool))
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog.locator("#err-max_tokens")).to_contain_text(
        "the valid range of max_tokens is [1, 8192]"
    )

    dialog.get_by_label("Max tokens").fill("512")
    dialog.get_by_label("Tool choice").fill("lookup")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog.locator("#err-tool_choice")).to_have_text(
        "tool_choice names 'lookup', which is not in tools."
    )
    expect(dialog.get_by_label("Tool choice")).to_have_attribute("aria-invalid", "true")

    dialog.get_by_label("Tool choice").fill("get_weather")
    dialog.get_by_label("Stop sequences (one per line, up to 16)").fill("END\n###")
    dialog.get_by_label("System prompt").fill("You are terse.")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog).to_be_hidden()
    ui_conversation.refresh_from_db()
    assert ui_conversation.system_prompt == "You are terse."
    assert ui_conversation.params == {
        "temperature": 0.7,
        "max_tokens": 512,
        "tools": good_tool,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "stop": ["END", "###"],
    }

    # Opened again, the panel shows what was saved.
    page.get_by_role("button", name="Settings").click()
    expect(dialog.get_by_label("Tool choice")).to_have_value("get_weather")
    expect(dialog.get_by_label("Stop sequences (one per line, up to 16)")).to_have_value("END\n###")


def test_settings_say_the_users_own_cap_on_max_tokens_and_refuse_past_it(
    session: Session, ui_conversation: Conversation
) -> None:
    from conversations.models import UserLimits

    UserLimits.objects.create(user=ui_conversation.owner, max_output_tokens=2000)
    page = session.page
    session.open(ui_conversation)
    page.get_by_role("button", name="Settings").click()
    dialog = page.get_by_role("dialog", name="Conversation settings")
    max_tokens = dialog.get_by_label("Max tokens")
    expect(max_tokens).to_have_attribute("placeholder", "default 2000, up to 2000")
    max_tokens.fill("5000")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog.locator("#err-max_tokens")).to_have_text(
        "max_tokens may be at most 2000 under your limits."
    )
    ui_conversation.refresh_from_db()
    assert "max_tokens" not in ui_conversation.params
