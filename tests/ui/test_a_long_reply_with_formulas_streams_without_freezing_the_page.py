"""A long answer full of formulas and code, streamed, leaves the page responsive: a reply being
written is drawn again at its frames, each drawing renders (and lays out) the whole text so
far, and drawn at every frame such an answer kept the main thread busy most of the time it
streamed — typing, scrolling and Stop lagged by hundreds of milliseconds. Its drawings are now
spaced by their cost, and the answer still ends drawn whole."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from conversations.models import Conversation
from tests.ui.conftest import Session, send, wait_until_idle

# Directive escapes: \n is a new line in the answer.
SECTION = (
    "## Section {i}\\n\\n"
    + "Some **bold** text with `code` and the formula $x_{i}^2 + \\\\frac{{1}}{{n}}$ here. " * 4
    + "\\n\\n```python\\ndef f{i}(x):\\n    return x * {i}\\n```\\n\\n- item a\\n- item b\\n\\n"
)
ANSWER = "".join(SECTION.format(i=i) for i in range(24))

WATCH_LONG_TASKS = """() => {
  window.longTasks = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) window.longTasks.push(entry.duration);
  }).observe({ type: "longtask" });
  window.streamStart = performance.now();
}"""


def test_a_long_reply_with_formulas_leaves_the_page_free_most_of_the_time(
    session: Session, ui_conversation: Conversation
) -> None:
    page = session.page
    session.open(ui_conversation)
    page.evaluate(WATCH_LONG_TASKS)
    send(page, f"Write it all [[sim: tokens_per_s=250 say={ANSWER}]]")
    wait_until_idle(page, timeout=120000)
    busy, elapsed = page.evaluate(
        "() => [window.longTasks.reduce((a, b) => a + b, 0), performance.now() - window.streamStart]"
    )
    reply = page.get_by_role("article", name=re.compile("^DeepSeek Chat"))
    expect(reply.locator(".message-content h2")).to_have_count(24)
    expect(reply.locator(".message-content .katex")).to_have_count(24 * 4)
    expect(reply.locator(".message-content")).to_contain_text("item b")
    # Drawn at every frame, the page was busy in long tasks for over four fifths of the stream
    # (a fifth, drawings spaced by their cost).
    assert busy < 0.5 * elapsed, f"{busy:.0f} ms of long tasks in {elapsed:.0f} ms"
