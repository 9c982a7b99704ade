"""A model the owner's policy stopped allowing after the page was opened (the picker still
offers it) is refused when chosen in Settings: the error under the picker names the model and
the policy, the dialog stays open, and the conversation keeps its model and its working
composer. It was saved, and the next message was refused."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig, Policy, User, UserLimits
from tests.ui.conftest import Session


def test_a_forbidden_model_is_refused_under_the_picker(
    session: Session, ui_user: User, ui_conversation: Conversation, ui_chat_model: ModelConfig
) -> None:
    page = session.page
    session.open(ui_conversation)
    dialog = page.get_by_role("dialog", name="Conversation settings")

    # Meanwhile, an admin gives Alice a policy that allows only the chat model.
    policy = Policy.objects.create(name="Chat only", all_models=False)
    policy.allowed_models.add(ui_chat_model)
    UserLimits.objects.create(user=ui_user, policy=policy)

    page.get_by_role("button", name="Settings").click()
    dialog.get_by_label("Model", exact=True).select_option("deepseek-reasoner")
    dialog.get_by_role("button", name="Save settings").click()
    expect(dialog.locator("#err-model")).to_have_text(
        "The model deepseek-reasoner is not allowed by your policy “Chat only”: choose another."
    )
    expect(dialog.get_by_label("Model", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(dialog).to_be_visible()
    session.screenshot("settings-forbidden-model")
    ui_conversation.refresh_from_db()
    assert ui_conversation.model_id == ui_chat_model.pk

    dialog.get_by_role("button", name="Cancel").click()
    page.reload()
    session.wait_connected()
    expect(page.get_by_role("textbox", name="Message", exact=True)).to_be_enabled()
    page.get_by_role("button", name="Settings").click()
    options = dialog.get_by_label("Model", exact=True).locator("option")
    expect(options).to_have_count(1)
    expect(options).to_have_attribute("value", "deepseek-chat")
