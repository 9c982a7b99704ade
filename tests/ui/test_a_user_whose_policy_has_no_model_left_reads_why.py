"""A user whose policy's only model was disabled reads why on the conversation's page (the
composer is blocked with the reason, naming the policy, not "pick another in Settings" from an
empty list) and on the welcome screen (no form to start a chat, the reason instead)."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig, Policy, User, UserLimits
from tests.ui.conftest import Session

WHY = "the models your policy “Chat only” allows are all disabled"


def test_the_composer_and_the_welcome_screen_say_why(
    session: Session, ui_user: User, ui_conversation: Conversation, ui_chat_model: ModelConfig
) -> None:
    policy = Policy.objects.create(name="Chat only", all_models=False)
    policy.allowed_models.add(ui_chat_model)
    UserLimits.objects.create(user=ui_user, policy=policy)
    ModelConfig.objects.filter(pk=ui_chat_model.pk).update(enabled=False)

    page = session.page
    session.open(ui_conversation)
    expect(page.get_by_role("textbox", name="Message", exact=True)).to_be_disabled()
    blocked = page.locator("#composer-blocked")
    expect(blocked).to_contain_text(WHY)
    expect(blocked).not_to_contain_text("pick another")
    expect(page.get_by_role("button", name="New chat")).to_be_disabled()

    page.goto(session.server.url + "/")
    expect(page.get_by_role("alert")).to_contain_text(WHY)
    expect(page.locator("#starter")).to_have_count(0)
