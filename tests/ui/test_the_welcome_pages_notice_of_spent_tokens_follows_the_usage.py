"""The welcome page's notice of spent tokens says the usage of now, not of when the page was
first read: the browser's back button showed the page from its cache (no notice after a reply
spent the day's tokens); and an open page went on saying the tokens were spent after the day
reset or the admin raised the limit, and said nothing after a reply in another tab spent them,
until it was reloaded."""

from __future__ import annotations

from django.utils import timezone
from playwright.sync_api import Browser, Locator, Page, expect

from conversations import quota
from conversations.models import Conversation, ModelConfig, User, UserLimits
from tests.support import make_user, usage_account
from tests.ui.conftest import LiveServer, Session, new_session

SPENT = "You have used all of today's tokens; see Usage for when it resets."


def spent_notice(page: Page) -> Locator:
    return page.locator(".welcome").get_by_role("alert").filter(has_text="tokens")


def test_the_back_button_shows_the_usage_of_now(
    session: Session, ui_user: User, ui_conversation: Conversation
) -> None:
    UserLimits.objects.create(user=ui_user, tokens_per_day=1000)
    usage_account(ui_user, day_used=10, month_used=10)
    page = session.page
    page.goto(f"{session.server.url}/")
    expect(page.get_by_role("button", name="Start chat")).to_be_visible()
    expect(spent_notice(page)).to_have_count(0)
    page.locator(f'.sidebar a[href="/c/{ui_conversation.id}/"]').click()
    session.wait_connected()
    usage_account(ui_user, day_used=1000, month_used=1000)  # a reply spent the rest

    page.go_back()
    expect(spent_notice(page)).to_have_text(SPENT)
    assert not session.errors, session.errors


def test_an_open_page_reads_the_usage_again_when_its_tab_is_shown(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=ui_user, tokens_per_day=1000)
    usage_account(ui_user, day_used=10, month_used=10)
    page = session.page
    page.goto(f"{session.server.url}/")
    expect(page.get_by_role("button", name="Start chat")).to_be_visible()
    usage_account(ui_user, day_used=1000, month_used=1000)  # a reply in another tab

    # The user comes back to this tab (headless Chromium keeps every tab shown: its event).
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(spent_notice(page)).to_have_text(SPENT)
    assert not session.errors, session.errors


def test_an_open_page_stops_saying_so_when_the_day_resets(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=ui_user, tokens_per_day=1000)
    usage_account(ui_user, day_used=1000, month_used=1000)
    page = session.page
    page.clock.install()
    page.goto(f"{session.server.url}/")
    notice = spent_notice(page)
    expect(notice).to_have_text(SPENT)
    resets = quota.periods_at(timezone.now()).next_day

    usage_account(ui_user, day_used=1000, month_used=1000, days_ago=1)  # the day is over
    page.clock.run_for(int((resets.timestamp() - page.evaluate("Date.now()") / 1000) * 1000) + 2000)
    expect(notice).to_have_count(0)
    expect(page.get_by_role("button", name="Start chat")).to_be_visible()
    assert not session.errors, session.errors


def test_an_open_page_stops_saying_so_when_the_admin_raises_the_limit(
    session: Session,
    browser: Browser,
    chat_server: LiveServer,
    ui_user: User,
    ui_chat_model: ModelConfig,
) -> None:
    UserLimits.objects.create(user=ui_user, tokens_per_day=1000)
    usage_account(ui_user, day_used=1000, month_used=1000)
    make_user("root", is_staff=True, is_superuser=True)
    page = session.page
    page.goto(f"{chat_server.url}/")
    page.wait_for_function("() => window.accountSocket?.ready === true")
    expect(spent_notice(page)).to_have_text(SPENT)

    admin = new_session(browser, chat_server, username="root")
    try:
        admin.page.goto(f"{chat_server.url}/admin/conversations/user/{ui_user.pk}/change/")
        limits = admin.page.locator("#limits-0")
        limits.get_by_label("Tokens per day: the limit").fill("5000")
        admin.page.get_by_role("button", name="Save", exact=True).click()
        expect(admin.page.locator(".messagelist")).to_contain_text("was changed successfully")
    finally:
        admin.page.context.close()
    assert UserLimits.objects.get(user=ui_user).tokens_per_day == 5000
    expect(spent_notice(page)).to_have_count(0)
    assert not session.errors, session.errors
