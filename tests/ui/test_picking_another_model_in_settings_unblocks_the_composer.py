"""The composer blocked because the conversation's model is disabled says "pick another in
Settings": doing so unblocks it without a reload."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig
from tests.ui.conftest import Session, wait_until_idle


def test_picking_an_enabled_model_unblocks_the_composer(
    session: Session, ui_conversation: Conversation, ui_chat_model: ModelConfig
) -> None:
    ModelConfig.objects.filter(pk=ui_chat_model.pk).update(enabled=False)
    page = session.page
    session.open(ui_conversation)
    composer = page.get_by_role("textbox", name="Message", exact=True)
    expect(composer).to_be_disabled()
    expect(page.locator("#composer-blocked")).to_contain_text("pick another in Settings")

    page.get_by_role("button", name="Settings").click()
    page.get_by_label("Model", exact=True).select_option("deepseek-reasoner")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#settings-dialog")).to_be_hidden()

    expect(composer).to_be_enabled()
    expect(page.locator("#composer-blocked")).to_be_hidden()
    composer.fill("Now? [[sim: say=Now.]]")
    composer.press("Enter")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Reasoner"))
    expect(reply.locator(".message-content")).to_have_text("Now.")
    wait_until_idle(page)
