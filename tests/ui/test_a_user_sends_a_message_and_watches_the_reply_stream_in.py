from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session

ANSWER = "Here is **the plan**:\\n\\n| step | owner |\\n| --- | --- |\\n| build | Alice |\\n\\n```python\\nprint(1 + 1)\\n```\\n\\nEuler: $e^{i\\pi} + 1 = 0$ and see [docs](https://example.com/docs)."


def test_signing_in_sending_and_watching_the_reply_stream_in(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    composer = page.get_by_role("textbox", name="Message", exact=True)
    expect(composer).to_be_focused()
    composer.fill(f"Plan the deploy [[sim: tokens_per_s=25 say={ANSWER}]]")
    expect(page.locator("#composer-estimate")).to_contain_text(
        re.compile(r"DeepSeek Chat · ~\d+ tokens \((< \$0\.0001|≈ \$\d+\.\d{4})\)")
    )
    composer.press("Enter")

    mine = page.get_by_role("article", name="You")
    expect(mine).to_contain_text("Plan the deploy")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    # Mid-stream: the Stop button is up and part of the text is on the page.
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(reply.locator(".message-content")).to_contain_text("Here is")
    expect(page.get_by_role("button", name="Stop")).to_be_hidden(timeout=20000)

    content = reply.locator(".message-content")
    expect(content.locator("strong")).to_have_text("the plan")
    expect(content.locator("table td").first).to_have_text("build")
    expect(content.locator("pre .code-lang")).to_have_text("python")
    expect(content.get_by_role("button", name="Copy code")).to_be_visible()
    expect(content.locator("pre code .hljs-built_in, pre code .hljs-number").first).to_be_visible()
    expect(content.locator(".katex").first).to_be_visible()
    link = content.get_by_role("link", name="docs")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(composer).to_be_empty()
    session.screenshot("conversation-light")

    reply_row = Message.objects.get(conversation=ui_conversation, role="assistant")
    assert reply_row.status == "complete"
    assert reply_row.content.startswith("Here is **the plan**")

    # Usage per message on expand.
    reply.get_by_text("Usage").click()
    expect(reply.locator(".usage dl")).to_contain_text("Completion")
    assert not session.errors, session.errors
