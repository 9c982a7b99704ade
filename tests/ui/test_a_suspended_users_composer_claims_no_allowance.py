"""A suspended user's composer is blocked, saying why, and claims nothing left to spend: its
allowance line read "; 1,000 left today" beside "Your account is suspended"."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, Policy, User, UserLimits
from tests.ui.conftest import Session


def test_the_estimate_names_the_model_only(
    session: Session, ui_conversation: Conversation, ui_user: User
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=ui_user, tokens_per_day=1000, suspended=True)
    session.open(ui_conversation)
    page = session.page
    expect(page.locator("#composer-blocked")).to_have_text(
        "Your account is suspended: you can read, but not send; ask an administrator."
    )
    page.wait_for_load_state("networkidle")  # the allowance is read after the page opens
    expect(page.locator("#composer-estimate")).to_have_text("DeepSeek Chat")
    assert not session.errors, session.errors
