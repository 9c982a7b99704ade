"""A share link's page carries its transcript once, in the server's articles: without JavaScript
they are the page, as written; with it, the script reads each message's markdown source from them
and draws it exactly as the conversation page draws it from its data (markdown, highlighted code,
math, model output sanitized), and a reply still being written when the page opened streams on
to its end."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from conversations import sharing
from conversations.models import Conversation, Message
from tests.ui.conftest import LiveServer, Session, new_session, send, wait_until_idle, words

# What the script must read back exactly: markup, an ampersand, quotes, a carriage return.
QUESTION = 'Deploy "v2" <b>today</b> & roll back?\r\nIn two lines.'
ANSWER = """## Deploying **version 2**

1. Build the image with `docker build -t app:2 .`
2. Switch the *traffic*

```python
def deploy(version: int) -> None:
    if version < 3 and "canary" in POOLS:
        print(f"deploying {version}")
```

| Stage | Time |
|-------|------|
| build | 2 min |

The budget is $e = 1 - \\frac{u}{t}$.

Raw <img src=x onerror="window.pwned=1"> and <script>window.pwned=2</script> stay text; \
see [the runbook](https://example.com/runbook).
"""

# Each message as drawn: a reply's markdown as HTML, a question's text.
DRAWN = """() => [...document.querySelectorAll('.messages > article')].map((article) => {
  const content = article.querySelector('.message-content');
  return content ? content.innerHTML : article.querySelector('.user-text').textContent;
})"""


def drawn(page: Page) -> list[str]:
    expect(page.locator(".messages > article")).to_have_count(2)
    expect(page.locator("[data-placeholder]")).to_have_count(0)
    return list(page.evaluate(DRAWN))


def add_turn(conversation: Conversation) -> None:
    question = Message.objects.create(
        conversation=conversation, role="user", author=conversation.owner, content=QUESTION
    )
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        model=conversation.model,
        content=ANSWER,
        status="complete",
        finish_reason="stop",
    )


def test_the_link_page_draws_what_the_conversation_page_draws(
    session: Session, ui_conversation: Conversation
) -> None:
    add_turn(ui_conversation)
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)
    page = session.page
    session.open(ui_conversation)
    expected = drawn(page)

    page.goto(f"{session.server.url}/s/{token}/")
    expect(page.locator("#connection-status")).to_have_text("Live")
    assert drawn(page) == expected
    assert expected[0] == QUESTION  # read back exactly, the carriage return too

    reply = page.get_by_role("article", name="DeepSeek Chat").locator(".message-content")
    expect(reply.locator("h2 strong")).to_have_text("version 2")
    expect(reply.locator("li code").first).to_have_text("docker build -t app:2 .")
    expect(reply.locator("pre.code-block[data-lang=python] .hljs-keyword").first).to_have_text(
        "def"
    )
    expect(reply.locator("pre code")).to_contain_text('if version < 3 and "canary" in POOLS:')
    expect(reply.locator("table td").first).to_have_text("build")
    expect(reply.locator(".math .katex")).to_have_count(1)
    expect(reply.get_by_role("link", name="the runbook")).to_have_attribute(
        "rel", "noopener noreferrer"
    )
    # The model's HTML is text; nothing of it runs or loads.
    expect(reply).to_contain_text('Raw <img src=x onerror="window.pwned=1"> and <script>')
    expect(page.locator(".shared-messages img, .shared-messages script")).to_have_count(0)
    assert page.evaluate("window.pwned") is None
    assert not session.errors, session.errors


def test_without_javascript_the_transcript_reads_as_written(
    browser: Browser, chat_server: LiveServer, ui_conversation: Conversation
) -> None:
    add_turn(ui_conversation)
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)
    session = new_session(browser, chat_server, java_script_enabled=False)
    page = session.page
    try:
        page.goto(f"{chat_server.url}/s/{token}/")
        question = page.get_by_role("article", name="alice")
        reply = page.get_by_role("article", name="DeepSeek Chat")
        expect(question.locator(".text")).to_have_text(
            'Deploy "v2" <b>today</b> & roll back?\nIn two lines.'
        )
        text = reply.locator(".text").inner_text()
        # Its lines as written (the page's style keeps them), its markup as text.
        assert "## Deploying **version 2**\n\n1. Build the image" in text, text
        assert '    if version < 3 and "canary" in POOLS:\n' in text, text
        assert '<img src=x onerror="window.pwned=1">' in text, text
        expect(page.locator("main img, main script, .messages")).to_have_count(0)
        session.screenshot("shared-transcript-without-javascript")
    finally:
        page.context.close()


def test_a_reply_being_written_when_the_page_opens_streams_to_its_end(
    browser: Browser, chat_server: LiveServer, session: Session, ui_conversation: Conversation
) -> None:
    """The page's articles say where the reply was (its status and sequence number): the
    script follows it from there, its text whole and nothing twice."""
    _, token = sharing.create_share_link(ui_conversation.owner, ui_conversation.id)
    owner = session.page
    session.open(ui_conversation)
    viewer = new_session(browser, chat_server)
    page = viewer.page
    try:
        answer = words(120, "midway")
        send(owner, f"Long [[sim: tokens_per_s=20 say={answer}]]")
        writing = owner.get_by_role("article", name=re.compile("^DeepSeek Chat"))
        expect(writing).to_contain_text("midway5")
        page.goto(f"{chat_server.url}/s/{token}/")
        reply = page.get_by_role("article", name="DeepSeek Chat")
        expect(reply).to_have_class(re.compile(r"\bis-streaming\b"))
        expect(reply).not_to_have_class(re.compile(r"\bis-streaming\b"), timeout=45000)
        expect(reply.locator(".message-content")).to_have_text(answer)
        wait_until_idle(owner)
    finally:
        page.context.close()
    assert not viewer.errors, viewer.errors
