"""The welcome page's starter says what sending costs and what is left, as the conversation
page's composer does ("~2 tokens; 3,450 left today"), as the message is typed and the model
changed, and says before "Start chat" when the message cannot fit in what is left. It said
nothing: a message that could not fit was refused only once sent, on a new conversation."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import ModelConfig, Policy, User, UserLimits
from tests.ui.conftest import Session


def test_the_starter_estimates_and_warns_as_the_composer_does(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=ui_user, tokens_per_day=3450)
    ModelConfig.objects.filter(pk=ui_chat_model.pk).update(default_max_tokens=1000)
    page = session.page
    page.goto(f"{session.server.url}/")
    estimate = page.locator("#starter-estimate")
    warning = page.get_by_role("status").filter(has_text="Sending this")
    expect(estimate).to_have_text("DeepSeek Chat; 3,450 left today")

    message = page.get_by_role("textbox", name="Message", exact=True)
    message.fill("Hello")
    expect(estimate).to_have_text("DeepSeek Chat · ~2 tokens (< $0.0001); 3,450 left today")
    expect(warning).to_have_count(0)  # up to 1,000 for the reply fits

    # The reasoner's reply may take up to 4,096: it cannot fit, and the starter says so.
    page.get_by_label("Model", exact=True).select_option("deepseek-reasoner")
    expect(estimate).to_have_text("DeepSeek Reasoner · ~2 tokens (< $0.0001); 3,450 left today")
    expect(warning).to_have_text(
        "Sending this needs up to ~4,119 tokens (your message and up to 4,096 for the reply), "
        "more than the 3,450 left today."
    )
    message.fill("")
    expect(warning).to_have_count(0)
    expect(estimate).to_have_text("DeepSeek Reasoner; 3,450 left today")

    # Sent all the same, it is refused with the server's own estimate: the same number.
    message.fill("Hello")
    page.get_by_role("button", name="Start chat").click()
    expect(page.get_by_text("this request may need up to 4,119")).to_be_visible()
