"""A reply still being written never shows less than the page showed of it. When its worker goes
silent (killed, cut off from the database), a tab watching from another worker asks for it again
after a quiet while, and the server answers from its row: the last checkpoint, up to a second of
text behind what the tab had read. The tab put that shorter copy in place, still under
"Writing…", for the ~40 s until the reaper ended the reply (an acceptance walk-through saw 401
characters become 386). Now it keeps what it showed until the reply's end (the text kept, the
reason), which replaces it as before.

The rule is ``replies.js``'s ``applySnapshot``, run here in the page's own browser as the page
runs it."""

from __future__ import annotations

from typing import Any

from conversations.models import Conversation
from tests.ui.conftest import Session

APPLY = """
async ([url, node, frames]) => {
  const replies = await import(url);
  const asked = [];
  const shown = [];
  for (const frame of frames) {
    const applied = replies.applySnapshot(node, frame, new Map(), (id, seq) => asked.push(seq));
    shown.push({ applied, content: node.content, reasoning: node.reasoning, seq: node.seq,
                 status: node.status });
  }
  return { shown, asked };
}
"""


def apply_snapshots(session: Session, node: dict[str, Any], *frames: dict[str, Any]) -> Any:
    page = session.page
    module = page.locator("script[type=module]").last.get_attribute("src")
    assert module is not None
    url = module.rsplit("/", 1)[0] + "/replies.js"
    return page.evaluate(APPLY, [url, node, list(frames)])


def streaming(content: str, seq: int, **more: Any) -> dict[str, Any]:
    return {"mode": "full", "content": content, "reasoning": "", "seq": seq, **more}


def test_an_older_copy_of_a_reply_being_written_leaves_the_longer_text(
    session: Session, ui_conversation: Conversation
) -> None:
    session.open(ui_conversation)
    node = {"id": "r", "role": "assistant", "status": "streaming", "content": "Hello there, wor",
            "reasoning": "", "seq": 12}  # fmt: skip
    result = apply_snapshots(
        session,
        node,
        streaming("Hello th", 5, status="streaming"),  # the row's last checkpoint
        streaming("Hello there, world and more", 15, status="streaming"),  # newer: taken
        # Its end, as the reaper left it: the text kept replaces what the page showed.
        streaming("Hello there, world", 14, status="interrupted", code="worker_lost"),
    )
    older, newer, ended = result["shown"]
    assert (older["applied"], older["content"], older["seq"]) == (False, "Hello there, wor", 12)
    assert (newer["applied"], newer["content"], newer["seq"]) == (
        True,
        "Hello there, world and more",
        15,
    )
    assert (ended["applied"], ended["content"], ended["status"]) == (
        True,
        "Hello there, world",
        "interrupted",
    )


def test_a_copy_that_is_not_the_start_of_the_text_shown_is_taken(
    session: Session, ui_conversation: Conversation
) -> None:
    """Not an older copy of the same text (its reasoning or content differ): the server's word."""
    session.open(ui_conversation)
    node = {"id": "r", "role": "assistant", "status": "streaming", "content": "Hello there",
            "reasoning": "Let me", "seq": 9}  # fmt: skip
    result = apply_snapshots(
        session,
        node,
        {
            "mode": "full",
            "content": "Hello",
            "reasoning": "Let us",
            "seq": 4,
            "status": "streaming",
        },
    )
    (taken,) = result["shown"]
    assert (taken["applied"], taken["content"], taken["reasoning"], taken["seq"]) == (
        True,
        "Hello",
        "Let us",
        4,
    )


def test_a_new_call_begun_behind_the_text_shown_replaces_it(
    session: Session, ui_conversation: Conversation
) -> None:
    """A continuation that starts behind what the page holds (an older call's task streamed on
    past what was stored) asks for the reply again, and that shorter copy replaces the text."""
    session.open(ui_conversation)
    page = session.page
    module = page.locator("script[type=module]").last.get_attribute("src")
    assert module is not None
    url = module.rsplit("/", 1)[0] + "/replies.js"
    result = page.evaluate(
        """
        async (url) => {
          const replies = await import(url);
          const node = { id: "r", role: "assistant", status: "interrupted",
                         content: "kept and older text", reasoning: "", seq: 20 };
          const asked = [];
          const syncing = new Map();
          replies.applyStarted(node, { seq: 8 }, syncing, (id, seq) => asked.push(seq));
          const applied = replies.applySnapshot(
            node, { mode: "full", content: "kept", reasoning: "", seq: 9, status: "streaming" },
            syncing, () => {});
          return { asked, applied, content: node.content, seq: node.seq };
        }
        """,
        url,
    )
    assert result == {"asked": [0], "applied": True, "content": "kept", "seq": 9}
