"""Suspending or unsuspending an account in the admin reaches its pages already open: the
welcome page says so, or stops saying it and offers "Start chat", and a conversation's composer
is blocked or unblocked, without a reload. An unsuspended user's open welcome page still said
"Your account is suspended" until she reloaded it, and a page opened before a suspension went
on offering to send (the send was refused)."""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from conversations.models import Conversation, User, UserLimits
from tests.support import make_user
from tests.ui.conftest import LiveServer, Session, new_session

SUSPENDED = "Your account is suspended: you can read, but not send; ask an administrator."


def test_the_welcome_page_and_the_composer_follow_the_admins_choice(
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
    start = welcome.get_by_role("button", name="Start chat")
    notice = welcome.locator(".welcome").get_by_role("alert")
    expect(notice).to_have_text(f"{SUSPENDED} Nor can you start a conversation.")
    expect(start).to_have_count(0)
    chat = welcome.context.new_page()
    chat.goto(f"{chat_server.url}/c/{ui_conversation.id}/")
    expect(chat.locator("#connection-status")).to_have_text("Connected")
    composer = chat.get_by_role("textbox", name="Message", exact=True)
    expect(composer).to_be_disabled()

    admin = new_session(browser, chat_server, username="root")
    try:
        set_suspended(admin.page, chat_server, ui_user, False)
        expect(start).to_be_visible()
        expect(notice).to_have_count(0)
        expect(composer).to_be_enabled()
        expect(chat.locator("#composer-blocked")).to_be_hidden()

        set_suspended(admin.page, chat_server, ui_user, True)
        expect(notice).to_have_text(f"{SUSPENDED} Nor can you start a conversation.")
        expect(start).to_have_count(0)
        expect(composer).to_be_disabled()
        expect(chat.locator("#composer-blocked")).to_have_text(SUSPENDED)
    finally:
        admin.page.context.close()
    assert not session.errors, session.errors


def set_suspended(page: Page, server: LiveServer, user: User, suspended: bool) -> None:
    """The user's "Suspended" box on their admin page, saved."""
    page.goto(f"{server.url}/admin/conversations/user/{user.pk}/change/")
    box = page.locator("#limits-0").get_by_label("Suspended")
    box.set_checked(suspended)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    assert UserLimits.objects.get(user=user).suspended is suspended
