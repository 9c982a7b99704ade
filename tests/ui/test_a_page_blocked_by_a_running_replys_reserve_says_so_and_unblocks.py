"""A page whose composer (or welcome starter) is blocked because running replies hold the rest
of the day's tokens says so — spent and reserved apart, and that sending comes back when they
end, not "you have used all of today's tokens; see when it resets" — and unblocks itself soon
after they end: a reply in another tab or conversation tells the page nothing when it ends,
and the page waited for midnight, until it was reloaded."""

from __future__ import annotations

from django.utils import timezone
from playwright.sync_api import expect

from conversations import quota
from conversations.models import Conversation, ModelConfig, UsageRecord, User, UserLimits
from tests.support import usage_account
from tests.ui.conftest import Session

HELD = (
    "All of today's 1,000 tokens are spent or held by a running reply: 400 spent, 600 reserved. "
    "You can send again once it ends, with what it did not use."
)


def a_reply_running(user: User, model: ModelConfig) -> UsageRecord:
    """Another tab's reply holding 600 of the 1,000 tokens of the day, 400 spent before it."""
    UserLimits.objects.create(user=user, tokens_per_day=1000)
    usage_account(user, day_used=1000, month_used=1000)
    periods = quota.periods_at(timezone.now())
    return UsageRecord.objects.create(
        user=user,
        model=model,
        purpose=UsageRecord.Purpose.CHAT,
        reserved_tokens=600,
        day_start=periods.day,
        month_start=periods.month,
    )


def it_ends(user: User, record: UsageRecord, used: int) -> None:
    """The reply ends having used ``used`` tokens: the rest of its reserve comes back."""
    UsageRecord.objects.filter(pk=record.pk).update(
        state=UsageRecord.State.SETTLED, reserved_tokens=0, total_tokens=used
    )
    usage_account(user, day_used=400 + used, month_used=400 + used)


def test_the_composer_says_what_the_running_reply_holds_and_unblocks_after_it(
    session: Session, ui_user: User, ui_conversation: Conversation, ui_chat_model: ModelConfig
) -> None:
    record = a_reply_running(ui_user, ui_chat_model)
    page = session.page
    page.clock.install()
    session.open(ui_conversation)
    composer = page.get_by_role("textbox", name="Message", exact=True)
    expect(composer).to_be_disabled()
    expect(page.locator("#composer-blocked")).to_have_text(HELD)

    it_ends(ui_user, record, used=100)
    page.clock.run_for(12_000)
    expect(composer).to_be_enabled()
    expect(page.locator("#composer-blocked")).to_be_hidden()
    assert not session.errors, session.errors


def test_the_welcome_page_says_so_and_offers_to_start_again_after_it(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    record = a_reply_running(ui_user, ui_chat_model)
    page = session.page
    page.clock.install()
    page.goto(f"{session.server.url}/")
    notice = page.locator(".welcome").get_by_role("alert").filter(has_text="tokens")
    expect(notice).to_have_text(HELD)

    it_ends(ui_user, record, used=100)
    page.clock.run_for(12_000)
    expect(notice).to_have_count(0)
    expect(page.get_by_role("button", name="Start chat")).to_be_visible()
    assert not session.errors, session.errors
