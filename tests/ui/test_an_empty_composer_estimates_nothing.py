"""The composer's estimate speaks of what is typed: empty (or only spaces), it shows the model and
what is left of the allowance, not "~0 tokens"."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Policy, User, UserLimits
from tests.support import usage_account
from tests.ui.conftest import Session


def test_an_empty_composer_shows_the_model_and_the_allowance_only(
    session: Session, ui_conversation: Conversation, ui_user: User
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=ui_user, tokens_per_day=100_000, tokens_per_month=1_000_000)
    usage_account(ui_user, day_used=85_000, month_used=500_000)
    page = session.page
    session.open(ui_conversation)
    estimate = page.locator("#composer-estimate")
    expect(estimate).to_have_text("DeepSeek Chat; 15,000 left today")

    composer = page.get_by_role("textbox", name="Message", exact=True)
    composer.fill("How do I roll back a deploy?")
    expect(estimate).to_have_text(
        re.compile(r"^DeepSeek Chat · ~\d+ tokens \([^)]*\); 15,000 left today$")
    )
    composer.fill("   \n ")
    expect(estimate).to_have_text("DeepSeek Chat; 15,000 left today")
    composer.fill("")
    expect(estimate).not_to_contain_text("token")
    assert not session.errors, session.errors
