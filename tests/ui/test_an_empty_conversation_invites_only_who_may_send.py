"""An empty conversation says "Send a message to start." only to whoever may send one now: to a
suspended user, whose composer is blocked, it says "No messages yet." (it invited them to do
what the composer below refused)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from conversations.models import Conversation, Policy, User, UserLimits
from tests.ui.conftest import Session


def empty_text(page: Page) -> str:
    return str(page.locator(".messages").evaluate("m => getComputedStyle(m, '::before').content"))


def test_a_suspended_user_is_not_invited_to_send(
    session: Session, ui_conversation: Conversation, ui_user: User
) -> None:
    Policy.objects.all().delete()
    session.open(ui_conversation)
    page = session.page
    assert empty_text(page) == '"Send a message to start."'

    UserLimits.objects.create(user=ui_user, suspended=True)
    session.open(ui_conversation)
    expect(page.locator("#composer-blocked")).to_have_text(
        "Your account is suspended: you can read, but not send; ask an administrator."
    )
    assert empty_text(page) == '"No messages yet."'
    assert not session.errors, session.errors
