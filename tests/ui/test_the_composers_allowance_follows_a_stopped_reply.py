"""What the composer says is left follows every reply's end: it was read again only when a
reply completed, so after a stopped (or failed) reply it kept the figure from before the reply
until the next completed one or a reload."""

from __future__ import annotations

from playwright.sync_api import expect

from conversations import quota
from conversations.models import Conversation, Message, Policy, User, UserLimits
from tests.ui.conftest import Session, send, wait_until_idle, words


def test_a_stopped_reply_is_counted_in_what_is_left(
    session: Session, ui_user: User, ui_conversation: Conversation
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=ui_user, tokens_per_day=100_000, tokens_per_month=1_000_000)
    page = session.page
    session.open(ui_conversation)
    send(page, f"Count slowly [[sim: tokens_per_s=8 say={words(60)}]]")
    expect(page.locator(".message-content").last).to_contain_text("word2")
    page.get_by_role("button", name="Stop", exact=True).click()
    wait_until_idle(page)
    assert Message.objects.get(conversation=ui_conversation, role="assistant").status == (
        "cancelled"
    )
    left = quota.usage_summary(ui_user)["remaining"]
    assert 0 < left < 100_000  # the stopped reply was charged what it used

    page.locator("#composer-input").fill("And then?")
    expect(page.locator("#composer-estimate")).to_contain_text(f"; {left:,} left today")
    assert not session.errors, session.errors
