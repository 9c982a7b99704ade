"""Before a message is sent, the composer says when what sending it reserves cannot fit in
what is left: the conversation so far, the message and the reply's output budget, as the
server reserves them at admission. Before, the composer showed only the message's own tokens
beside what was left ("~2 tokens; 4,000 left today"), and the message was refused once sent
("this request may need up to 4,334"): the history and the output budget were nowhere in that
line."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, Message, Policy, User, UserLimits
from tests.ui.conftest import Session


def test_the_composer_warns_of_a_reply_budget_that_cannot_fit(
    session: Session, ui_conversation: Conversation, ui_user: User
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=ui_user, tokens_per_day=5000)
    Conversation.objects.filter(pk=ui_conversation.pk).update(params={"max_tokens": 1000})
    session.open(ui_conversation)
    page = session.page
    page.wait_for_load_state("networkidle")  # the allowance is read after the page opens
    composer = page.get_by_role("textbox", name="Message", exact=True)
    warning = page.locator("#usage-warning")

    # A short message and up to 1,000 tokens of reply fit in 5,000.
    composer.fill("Hello")
    expect(page.locator("#composer-estimate")).to_contain_text("; 5,000 left today")
    expect(warning).to_be_hidden()

    # A long one does not, though the message alone (~4,500 tokens) is fewer than what is left.
    composer.fill("word " * 3000)
    expect(page.locator("#composer-estimate")).to_contain_text("~4,500 tokens")
    expect(warning).to_have_text(
        "Sending this needs up to ~5,971 tokens (the conversation so far, your message and up "
        "to 1,000 for the reply), more than the 5,000 left today."
    )
    composer.fill("")
    expect(warning).to_be_hidden()


def test_the_composer_counts_the_conversation_so_far_as_the_server_does(
    session: Session, ui_conversation: Conversation, ui_user: User
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=ui_user, tokens_per_day=4000)
    Conversation.objects.filter(pk=ui_conversation.pk).update(params={"max_tokens": 1000})
    question = Message.objects.create(
        conversation=ui_conversation, role="user", author=ui_user, content="word " * 2000
    )
    Message.objects.create(
        conversation=ui_conversation,
        parent=question,
        role="assistant",
        model=ui_conversation.model,
        content="Done.",
        status="complete",
    )
    session.open(ui_conversation)
    page = session.page
    page.wait_for_load_state("networkidle")
    composer = page.get_by_role("textbox", name="Message", exact=True)
    composer.fill("Hello")
    expect(page.locator("#composer-estimate")).to_contain_text("~2 tokens")
    expect(page.locator("#usage-warning")).to_have_text(
        "Sending this needs up to ~4,334 tokens (the conversation so far, your message and up "
        "to 1,000 for the reply), more than the 4,000 left today."
    )
    # Sent all the same, it is refused with the server's own estimate: the same number.
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("this request may need up to 4,334")).to_be_visible()
