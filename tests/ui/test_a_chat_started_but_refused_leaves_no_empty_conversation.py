"""A chat started from the welcome page whose first message is refused at admission leaves no
empty "New chat" behind: it stayed in the sidebar for ever. A conversation is listed once its
first message is admitted (the text refused is kept, as before), and an empty one nothing was
set on is removed once abandoned, when its owner starts another."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from conversations.models import Conversation, ModelConfig, Policy, User, UserLimits
from tests.ui.conftest import Session, wait_until_idle


def own_list(page: Page) -> Locator:
    sidebar = page.get_by_role("complementary", name="Conversations")
    return sidebar.locator(".conversation-list:not(.shared-list) > li[data-id]")


def start_chat(page: Page, model: str, text: str) -> None:
    page.get_by_label("Model", exact=True).select_option(label=model)
    page.get_by_role("textbox", name="Message", exact=True).fill(text)
    page.get_by_role("button", name="Start chat").click()
    page.wait_for_url("**/c/**")


def test_a_refused_first_message_leaves_nothing_listed_until_one_is_admitted(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    Policy.objects.all().delete()
    limits = UserLimits.objects.create(user=ui_user, tokens_per_day=3450)
    page = session.page
    page.goto(f"{session.server.url}/")
    start_chat(page, "DeepSeek Reasoner (thinks first)", "Plan the release [[sim: say=A plan.]]")

    composer = page.get_by_role("textbox", name="Message", exact=True)
    expect(page.get_by_text("This would exceed your daily limit")).to_be_visible()
    expect(composer).to_have_value("Plan the release [[sim: say=A plan.]]")  # kept
    expect(own_list(page)).to_have_count(0)
    page.goto(f"{session.server.url}/")
    expect(own_list(page)).to_have_count(0)
    page.go_back()
    session.wait_connected()

    # Once a message of it is admitted, it is listed: in this tab at once, and on every page.
    UserLimits.objects.filter(pk=limits.pk).update(tokens_per_day=None)
    page.get_by_role("button", name="Send", exact=True).click()
    conversation_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    expect(own_list(page)).to_have_count(1)
    expect(own_list(page).first).to_have_attribute("data-id", conversation_id)
    wait_until_idle(page)
    page.goto(f"{session.server.url}/")
    expect(own_list(page)).to_have_count(1)
    assert not [e for e in session.errors if "Failed to load resource" not in e], session.errors


def test_an_abandoned_empty_conversation_goes_when_another_is_started(
    session: Session, ui_user: User, ui_chat_model: ModelConfig
) -> None:
    long_ago = timezone.now() - timedelta(days=2)
    abandoned = Conversation.objects.create(owner=ui_user, model=ui_chat_model)
    # Something of its owner's is in each of these: they stay.
    named = Conversation.objects.create(owner=ui_user, model=ui_chat_model, title="Ideas")
    prompted = Conversation.objects.create(
        owner=ui_user, model=ui_chat_model, system_prompt="Answer in French."
    )
    recent = Conversation.objects.create(owner=ui_user, model=ui_chat_model)
    Conversation.objects.exclude(pk=recent.pk).update(created_at=long_ago)
    page = session.page
    page.goto(f"{session.server.url}/")
    expect(own_list(page)).to_have_count(1)  # "Ideas"; the empty ones are not listed

    start_chat(page, "DeepSeek Chat", "Hello [[sim: say=Hi.]]")
    wait_until_idle(page)
    assert not Conversation.objects.filter(pk=abandoned.pk).exists()
    assert Conversation.objects.filter(pk__in=[named.pk, prompted.pk, recent.pk]).count() == 3
    expect(own_list(page)).to_have_count(2)
    assert not session.errors, session.errors
