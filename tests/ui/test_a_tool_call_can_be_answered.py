from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message, User, UserLimits
from tests.support import usage_account
from tests.ui.conftest import Session, send, wait_until_idle

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_a_tool_call_is_shown_and_answering_it_continues_the_reply(
    session: Session, ui_conversation: Conversation
) -> None:
    ui_conversation.params = {"tools": [WEATHER_TOOL]}
    ui_conversation.save()
    page = session.page
    session.open(ui_conversation)
    send(page, "What is the weather in Paris? [[sim: tool=get_weather]]")
    wait_until_idle(page)
    call = page.get_by_role("region", name="Tool call get_weather")
    expect(call).to_contain_text('"city"')
    call.get_by_label("Result of get_weather").fill("18C and sunny")
    session.screenshot("tool-call")
    call.get_by_role("button", name="Send result").click()

    expect(page.get_by_role("article", name="Tool result")).to_contain_text("18C and sunny")
    replies = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(replies).to_have_count(2)
    wait_until_idle(page)
    expect(replies.nth(1).locator(".message-content")).to_contain_text("18C and sunny")
    tool_row = Message.objects.get(conversation=ui_conversation, role="tool")
    assert tool_row.content == "18C and sunny"
    assert Message.objects.filter(conversation=ui_conversation, role="assistant").count() == 2


def test_a_tool_call_cut_off_by_the_length_limit_offers_no_answer(
    session: Session, ui_conversation: Conversation
) -> None:
    """Only a reply that finished asking for its tools can be answered (the server refuses the
    rest): a call cut off mid-arguments is shown, without an answer box."""
    ui_conversation.params = {"tools": [WEATHER_TOOL], "max_tokens": 3}
    ui_conversation.save()
    page = session.page
    session.open(ui_conversation)
    send(page, "What is the weather in Paris? [[sim: tool=get_weather]]")
    wait_until_idle(page)
    reply = Message.objects.get(conversation=ui_conversation, role="assistant")
    assert (reply.status, reply.finish_reason) == ("complete", "length"), reply.finish_reason
    call = page.get_by_role("region", name="Tool call get_weather")
    expect(call).to_be_visible()
    expect(call.get_by_label("Result of get_weather")).to_have_count(0)
    expect(call.get_by_role("button", name="Send result")).to_have_count(0)


def test_a_refused_tool_result_can_be_sent_again(
    session: Session, ui_user: User, ui_conversation: Conversation
) -> None:
    """The server refuses the result (here: the day's tokens ran out meanwhile); once that is
    sorted out, the same box sends it again."""
    ui_conversation.params = {"tools": [WEATHER_TOOL]}
    ui_conversation.save()
    page = session.page
    session.open(ui_conversation)
    send(page, "What is the weather in Paris? [[sim: tool=get_weather]]")
    wait_until_idle(page)
    limits = UserLimits.objects.create(user=ui_user, tokens_per_day=1000)
    usage_account(ui_user, day_used=1000)
    call = page.get_by_role("region", name="Tool call get_weather")
    call.get_by_label("Result of get_weather").fill("18C and sunny")
    call.get_by_role("button", name="Send result").click()
    expect(page.locator("#composer-error")).to_contain_text("tokens")
    assert not Message.objects.filter(conversation=ui_conversation, role="tool").exists()

    limits.delete()
    expect(call.get_by_label("Result of get_weather")).to_have_value("18C and sunny")
    call.get_by_role("button", name="Send result").click()
    expect(page.get_by_role("article", name="Tool result")).to_contain_text("18C and sunny")
    wait_until_idle(page)
