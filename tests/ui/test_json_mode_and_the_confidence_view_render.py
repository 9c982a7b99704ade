from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send, wait_until_idle


def test_json_replies_are_pretty_printed_and_tokens_can_be_coloured_by_confidence(
    session: Session, ui_conversation: Conversation
) -> None:
    ui_conversation.params = {
        "response_format": {"type": "json_object"},
        "logprobs": True,
        "top_logprobs": 3,
    }
    ui_conversation.save()
    page = session.page
    session.open(ui_conversation)
    send(page, "Describe the release as json with name and version fields")
    expect(page.locator("#composer-error")).to_be_empty()
    expect(page.get_by_role("article", name="You")).to_be_visible()
    wait_until_idle(page)
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    row = Message.objects.get(conversation=ui_conversation, role="assistant")
    parsed = json.loads(row.content)
    expect(reply.locator(".json-valid")).to_have_text("Valid JSON")
    expect(reply.get_by_role("button", name="Copy JSON")).to_be_visible()
    expect(reply.locator("pre code")).to_have_text(json.dumps(parsed, indent=2))
    session.screenshot("json-mode")

    page.get_by_role("button", name="Confidence").click()
    expect(page.get_by_role("button", name="Confidence")).to_have_attribute("aria-pressed", "true")
    tokens = reply.locator(".confidence .tok")
    expect(tokens.first).to_be_visible()
    assert tokens.count() == len(row.logprobs["content"])
    tokens.nth(1).focus()
    alternatives = tokens.nth(1).locator(".tok-alts")
    expect(alternatives).to_be_visible()
    expect(alternatives.locator(".tok-alt")).to_have_count(3)
    session.screenshot("confidence-view")
