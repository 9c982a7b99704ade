"""A reply's Usage panel says what the user paid for the reply, all its calls together: a reply
interrupted (charged 500 + 24) then continued (417 + 194) showed Prompt 417 / Completion 194
while the ledger charged 1,135, and a reply whose two calls were both interrupted showed no
panel at all."""

from __future__ import annotations

import re

from django.db import transaction
from django.db.models import Sum
from playwright.sync_api import Locator, expect

from conversations import quota
from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User
from tests.ui.conftest import Session, send, wait_until_idle, words


def panel_rows(reply: Locator) -> dict[str, str]:
    reply.locator(".usage summary").click()
    names = reply.locator(".usage dt").all_inner_texts()
    values = reply.locator(".usage dd").all_inner_texts()
    return dict(zip(names, values, strict=True))


def ledger_of(reply_id: object) -> dict[str, str]:
    """The reply's calls as the ledger charged them, as the panel groups digits."""
    totals = UsageRecord.objects.filter(message_id=reply_id).aggregate(
        prompt=Sum("prompt_tokens"),
        hit=Sum("cache_hit_tokens"),
        completion=Sum("completion_tokens"),
        reasoning=Sum("reasoning_tokens"),
    )
    return {
        "Prompt": f"{totals['prompt']:,}",
        "Cache hit": f"{totals['hit']:,}",
        "Completion": f"{totals['completion']:,}",
        "Reasoning": f"{totals['reasoning']:,}",
    }


def test_a_continued_reply_shows_what_both_its_calls_were_charged(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    send(page, f"Go [[sim: finish=length say={words(40)}]]")
    wait_until_idle(page)
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat")).last
    reply.get_by_role("button", name="Continue", exact=True).click()
    wait_until_idle(page)
    reply_row = Message.objects.get(conversation=ui_conversation, role="assistant")
    expect(reply.locator(".usage summary")).to_have_text("Usage")
    shown = panel_rows(reply)
    assert UsageRecord.objects.filter(message=reply_row, state="settled").count() == 2
    assert shown == {**ledger_of(reply_row.pk), "Calls": "2"}

    # Read again from the server, the page says the same.
    page.reload()
    session.wait_connected()
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat")).last
    assert panel_rows(reply) == shown
    assert not session.errors, session.errors


def test_a_reply_whose_calls_were_all_interrupted_shows_what_they_were_charged(
    session: Session, ui_user: User, ui_chat_model: ModelConfig, ui_conversation: Conversation
) -> None:
    question = Message.objects.create(
        conversation=ui_conversation,
        role=Message.Role.USER,
        author=ui_user,
        content="Plan the deploy",
        status=Message.Status.COMPLETE,
    )
    reply = Message.objects.create(
        conversation=ui_conversation,
        parent=question,
        role=Message.Role.ASSISTANT,
        model=ui_chat_model,
        content="First we build, then",
        status=Message.Status.INTERRUPTED,
        error_code="worker_lost",
    )
    for text in ("First we", " build, then"):  # interrupted, then its continuation too
        with transaction.atomic():
            record = quota.admit(
                ui_user,
                ui_chat_model,
                purpose="chat",
                prompt_tokens=500,
                max_tokens=100,
                conversation=ui_conversation,
                message=reply,
            )
        quota.settle(record.pk, outcome="interrupted", usage=None, output_text=text)

    page = session.page
    session.open(ui_conversation)
    shown = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(shown.locator(".usage summary")).to_have_text("Usage (estimated)")
    assert panel_rows(shown) == {**ledger_of(reply.pk), "Calls": "2"}
    assert not session.errors, session.errors
