"""The same conversation open in two tabs: settings saved in one reached the other only at a
reload, and a save from the other (its dialog filled from the old settings) silently wiped
them. A saved change now reaches the other tabs (the model they name, their copy, an open
dialog, filled again and saying so), and a save based on settings changed where no tab was told
(in the admin, say) is refused, the dialog showing them as they are now."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, expect

from conversations.models import Conversation, ModelConfig
from conversations.ui_actions import SETTINGS_CHANGED
from tests.ui.conftest import Session
from tests.ui.test_a_page_read_before_a_change_does_not_undo_it import HeldRead, HeldRequest


@pytest.fixture
def second_tab(session: Session) -> Iterator[Session]:
    """Another tab of Alice's, in the same browser (her session)."""
    page = session.page.context.new_page()
    yield Session(page=page, server=session.server, dialogs=[], errors=[])
    page.close()


def open_settings(tab: Session) -> Locator:
    tab.page.get_by_role("button", name="Settings").click()
    dialog = tab.page.get_by_role("dialog", name="Conversation settings")
    expect(dialog).to_be_visible()
    return dialog


def test_settings_saved_in_one_tab_reach_the_other_and_its_save_keeps_them(
    session: Session,
    second_tab: Session,
    ui_conversation: Conversation,
    ui_chat_model: ModelConfig,
) -> None:
    session.open(ui_conversation)
    second_tab.open(ui_conversation)
    stale = open_settings(second_tab)  # filled from the settings as they were
    expect(stale.get_by_label("Model", exact=True)).to_have_value("deepseek-chat")

    first = open_settings(session)
    first.get_by_label("System prompt").fill("You are a pirate.")
    first.get_by_label("Model", exact=True).select_option("deepseek-reasoner")
    first.get_by_role("button", name="Save settings").click()
    expect(first).to_be_hidden()

    # The other tab's open dialog is filled again, saying why; its page names the new model.
    expect(stale.locator('.field-error[data-error-for="__all__"]')).to_have_text(SETTINGS_CHANGED)
    expect(stale.get_by_label("System prompt")).to_have_value("You are a pirate.")
    expect(stale.get_by_label("Model", exact=True)).to_have_value("deepseek-reasoner")
    composer = second_tab.page.get_by_role("textbox", name="Message", exact=True)
    expect(composer).to_have_attribute("placeholder", "Message DeepSeek Reasoner")

    stale.get_by_label("Temperature").fill("0.3")
    stale.get_by_role("button", name="Save settings").click()
    expect(stale).to_be_hidden()
    ui_conversation.refresh_from_db()
    assert ui_conversation.model.name == "deepseek-reasoner"
    assert ui_conversation.system_prompt == "You are a pirate."
    assert ui_conversation.params == {"temperature": 0.3}

    # And back: the first tab, dialog closed, opens it on what the other saved.
    again = open_settings(session)
    expect(again.get_by_label("Temperature")).to_have_value("0.3")
    expect(again.get_by_label("System prompt")).to_have_value("You are a pirate.")
    expect(again.locator('.field-error[data-error-for="__all__"]')).to_be_empty()


def test_a_save_based_on_settings_changed_unannounced_is_refused_and_shows_them(
    session: Session, ui_conversation: Conversation
) -> None:
    session.open(ui_conversation)
    dialog = open_settings(session)
    # Changed where no tab is told (as the admin's form does): only the save can find out.
    reasoner = ModelConfig.objects.get(name="deepseek-reasoner")
    Conversation.objects.filter(pk=ui_conversation.pk).update(
        system_prompt="You are a pirate.", model=reasoner
    )

    dialog.get_by_label("Temperature").fill("0.3")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog.locator('.field-error[data-error-for="__all__"]')).to_have_text(SETTINGS_CHANGED)
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("System prompt")).to_have_value("You are a pirate.")
    expect(dialog.get_by_label("Model", exact=True)).to_have_value("deepseek-reasoner")
    expect(dialog.get_by_label("Temperature")).to_have_value("")
    composer = session.page.get_by_role("textbox", name="Message", exact=True)
    expect(composer).to_have_attribute("placeholder", "Message DeepSeek Reasoner")
    ui_conversation.refresh_from_db()
    assert ui_conversation.system_prompt == "You are a pirate." and ui_conversation.params == {}

    dialog.get_by_label("Temperature").fill("0.3")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog).to_be_hidden()
    ui_conversation.refresh_from_db()
    assert ui_conversation.model.name == "deepseek-reasoner"
    assert ui_conversation.system_prompt == "You are a pirate."
    assert ui_conversation.params == {"temperature": 0.3}


def test_a_read_begun_before_a_save_elsewhere_does_not_put_the_old_settings_back(
    session: Session,
    second_tab: Session,
    ui_conversation: Conversation,
    ui_chat_model: ModelConfig,
) -> None:
    """A tab reads its page again after a reconnect; settings saved in another tab meanwhile
    reach it by their frame before that read's answer, which the server rendered before the
    save: the read's older settings are left (they were taken over the frame's: the old model
    named, the dialog refilled with them, the next save refused as stale)."""
    page = session.page
    session.open(ui_conversation)
    read = HeldRead(page, f"{session.server.url}/c/{ui_conversation.id}/")
    page.evaluate("() => window.chatSocket.drop()")  # a reconnect reads the page again
    read.wait_held()
    session.wait_connected()

    second_tab.open(ui_conversation)
    other = open_settings(second_tab)
    other.get_by_label("System prompt").fill("You are a pirate.")
    other.get_by_label("Model", exact=True).select_option("deepseek-reasoner")
    other.get_by_role("button", name="Save settings").click()
    expect(other).to_be_hidden()
    composer = page.get_by_role("textbox", name="Message", exact=True)
    expect(composer).to_have_attribute("placeholder", "Message DeepSeek Reasoner")

    # (The frame's own page read, for the blocked state, may have been taken already.)
    taken = page.evaluate("() => window.readsTaken")
    HeldRequest.answer(read)
    page.wait_for_function("(taken) => window.readsTaken > taken", arg=taken)
    page.wait_for_timeout(300)  # the read's data, taken after its lists
    expect(composer).to_have_attribute("placeholder", "Message DeepSeek Reasoner")
    mine = open_settings(session)
    expect(mine.get_by_label("System prompt")).to_have_value("You are a pirate.")
    mine.get_by_label("Temperature").fill("0.4")
    mine.get_by_role("button", name="Save settings").click()
    expect(mine).to_be_hidden()
    ui_conversation.refresh_from_db()
    assert ui_conversation.system_prompt == "You are a pirate."
    assert ui_conversation.params.get("temperature") == 0.4
    assert not session.errors, session.errors
