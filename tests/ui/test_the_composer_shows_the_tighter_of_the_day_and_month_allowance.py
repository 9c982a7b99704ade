"""The composer's allowance line shows what the user may still spend: the tighter of what is left
today and this month, named after the one that binds."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations.models import Conversation, Policy, User, UserLimits
from tests.support import usage_account
from tests.ui.conftest import Session


def test_a_used_up_month_reads_as_none_left_this_month(
    session: Session, ui_conversation: Conversation, ui_user: User
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=ui_user, tokens_per_day=100_000, tokens_per_month=100_000)
    usage_account(ui_user, day_used=85_000, month_used=100_000)
    session.open(ui_conversation)
    estimate = session.page.locator("#composer-estimate")
    expect(estimate).to_contain_text("; 0 left this month")
    expect(estimate).not_to_contain_text("today")


def test_a_nearly_used_day_reads_as_what_is_left_today(
    session: Session, ui_conversation: Conversation, ui_user: User
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=ui_user, tokens_per_day=100_000, tokens_per_month=1_000_000)
    usage_account(ui_user, day_used=85_000, month_used=500_000)
    session.open(ui_conversation)
    expect(session.page.locator("#composer-estimate")).to_contain_text("; 15,000 left today")


def test_a_day_the_user_has_no_limit_on_leaves_the_month_to_show(
    session: Session, ui_conversation: Conversation, ui_user: User
) -> None:
    """The policy allows 100,000 a day; the user's own daily limit is unlimited."""
    Policy.objects.all().delete()
    Policy.objects.create(
        name="Default", is_default=True, tokens_per_day=100_000, tokens_per_month=1_000_000
    )
    UserLimits.objects.create(user=ui_user, tokens_per_day_unlimited=True)
    usage_account(ui_user, day_used=85_000, month_used=500_000)
    session.open(ui_conversation)
    estimate = session.page.locator("#composer-estimate")
    expect(estimate).to_contain_text("; 500,000 left this month")
    expect(estimate).not_to_contain_text("today")
