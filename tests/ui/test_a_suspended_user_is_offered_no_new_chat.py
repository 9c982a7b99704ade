"""The sidebar's "New chat" is disabled, saying why, while the account is suspended, on every
page that has it (the welcome page, a conversation's page), and enabled again once the admin
lifts the suspension, without a reload. It stayed enabled: a suspended user's click made a
conversation they could not send in, or was refused, instead of saying so beforehand."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from conversations.models import Conversation, User, UserLimits
from tests.support import make_user
from tests.ui.conftest import LiveServer, Session, new_session
from tests.ui.test_a_suspension_reaches_the_pages_already_open import set_suspended

WHY = "Your account is suspended: you cannot start a conversation; ask an administrator."


def expect_new_chat(page: Page, *, offered: bool) -> None:
    new_chat = page.locator(".sidebar").get_by_role("button", name="New chat")
    if offered:
        expect(new_chat).to_be_enabled()
        expect(new_chat).not_to_have_accessible_description(WHY)
        expect(page.get_by_text(WHY)).to_be_hidden()
    else:
        expect(new_chat).to_be_disabled()
        expect(new_chat).to_have_accessible_description(WHY)
        expect(page.locator(".sidebar").get_by_text(WHY)).to_be_visible()


def test_new_chat_says_why_it_is_disabled_and_follows_the_suspension(
    session: Session,
    browser: Browser,
    chat_server: LiveServer,
    ui_user: User,
    ui_conversation: Conversation,
) -> None:
    UserLimits.objects.create(user=ui_user, suspended=True)
    make_user("root", is_staff=True, is_superuser=True)
    welcome = session.page
    welcome.goto(f"{chat_server.url}/")
    welcome.wait_for_function("() => window.accountSocket?.ready === true")
    expect_new_chat(welcome, offered=False)
    chat = welcome.context.new_page()
    chat.goto(f"{chat_server.url}/c/{ui_conversation.id}/")
    expect(chat.locator("#connection-status")).to_have_text("Connected")
    expect_new_chat(chat, offered=False)
    # Nor by its keyboard shortcut (which sent the form whatever its button said).
    posts: list[str] = []
    chat.on(
        "request", lambda request: posts.append(request.url) if request.method == "POST" else None
    )
    chat.keyboard.press("Control+Shift+O")
    chat.wait_for_timeout(1000)  # a form sent goes out at once
    assert posts == []

    admin = new_session(browser, chat_server, username="root")
    try:
        set_suspended(admin.page, chat_server, ui_user, False)
        expect_new_chat(welcome, offered=True)
        expect_new_chat(chat, offered=True)

        set_suspended(admin.page, chat_server, ui_user, True)
        expect_new_chat(welcome, offered=False)
        expect_new_chat(chat, offered=False)
    finally:
        admin.page.context.close()
    assert not session.errors, session.errors
