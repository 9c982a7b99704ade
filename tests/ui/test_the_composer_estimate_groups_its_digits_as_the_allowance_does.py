"""The composer's estimate writes a long message's tokens as the allowance beside it writes
what is left ("~60,000 tokens; 1,000 left today"): it read "~60000 tokens; 1,000 left today",
two numbers hard to compare at a glance."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, Policy, User, UserLimits
from tests.ui.conftest import Session


def test_a_long_message_is_estimated_in_grouped_digits(
    session: Session, ui_conversation: Conversation, ui_user: User
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=ui_user, tokens_per_day=1000)
    session.open(ui_conversation)
    page = session.page
    page.wait_for_load_state("networkidle")  # the allowance is read after the page opens
    page.get_by_role("textbox", name="Message", exact=True).fill("word " * 40000)
    expect(page.locator("#composer-estimate")).to_contain_text("· ~60,000 tokens (")
    expect(page.locator("#composer-estimate")).to_contain_text("; 1,000 left today")
