"""The welcome page says, before a message is typed, what the conversation's page says: a
suspended user cannot start a conversation (its "Start chat" was refused only once pressed),
and one whose tokens are spent is told so (each "Start chat" made another empty conversation,
its composer blocked only then), and so is one whose limits allow no request at all (0 requests
a minute or replies at once: offered "Start chat" and Send, refused only on sending)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation, ModelConfig, User, UserLimits
from tests.support import usage_account
from tests.ui.conftest import Session


def test_a_suspended_user_is_told_before_typing(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=ui_user, suspended=True)
    page = session.page
    page.goto(f"{session.server.url}/")
    expect(page.get_by_role("alert")).to_have_text(
        "Your account is suspended: you can read, but not send; ask an administrator. Nor can you start a conversation."
    )
    expect(page.get_by_role("button", name="Start chat")).to_have_count(0)
    assert not session.errors, session.errors


def test_a_user_whose_tokens_are_spent_is_told_before_typing(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=ui_user, tokens_per_day=1000)
    usage_account(ui_user, day_used=1000, month_used=1000)
    page = session.page
    page.goto(f"{session.server.url}/")
    expect(page.get_by_role("alert").filter(has_text="tokens")).to_have_text(
        "You have used all of today's tokens; see Usage for when it resets."
    )
    session.screenshot("welcome-tokens-spent")
    assert not session.errors, session.errors


def test_a_user_with_tokens_left_reads_no_notice(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=ui_user, tokens_per_day=1000)
    usage_account(ui_user, day_used=999, month_used=999)
    page = session.page
    page.goto(f"{session.server.url}/")
    expect(page.get_by_role("button", name="Start chat")).to_be_visible()
    expect(page.locator(".welcome .notice")).to_have_count(0)


@pytest.mark.parametrize(
    ("limit", "said"),
    [
        ("requests_per_minute", "Your limits allow no requests (0 requests per minute)"),
        ("concurrent_streams", "Your limits allow no replies at once (0 replies running at once)"),
    ],
)
def test_a_user_whose_limits_allow_no_request_is_told_before_typing(
    session: Session,
    ui_user: User,
    ui_chat_model: ModelConfig,
    ui_conversation: Conversation,
    limit: str,
    said: str,
) -> None:
    UserLimits.objects.create(user=ui_user, **{limit: 0})
    page = session.page
    page.goto(f"{session.server.url}/")
    expect(page.get_by_role("alert")).to_have_text(
        f"{said}: you can read, but not send; ask an administrator. Nor can you start a "
        "conversation."
    )
    expect(page.get_by_role("button", name="Start chat")).to_be_hidden()
    expect(page.get_by_role("button", name="New chat")).to_be_disabled()
    # A conversation's page says the same, its composer blocked.
    page.goto(f"{session.server.url}/c/{ui_conversation.id}/")
    expect(page.locator("#composer-blocked")).to_have_text(
        f"{said}: you can read, but not send; ask an administrator."
    )
    assert not session.errors, session.errors
