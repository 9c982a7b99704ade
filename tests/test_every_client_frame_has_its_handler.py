"""The consumer's one table of client frames (``consumers.CLIENT_FRAMES``) names a method for
each frame, and lists the frames README documents, no more and no fewer."""

from __future__ import annotations

import re
from pathlib import Path

from conversations.consumers import CLIENT_FRAMES, ConversationConsumer

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_client_frame_is_answered_by_a_method_of_the_consumer() -> None:
    for kind, frame in CLIENT_FRAMES.items():
        assert callable(getattr(ConversationConsumer, frame.handler, None)), kind


def test_the_table_lists_the_frames_readme_documents_with_their_fields() -> None:
    section = README.read_text().split("**Client → server**")[1].split("**Server → client**")[0]
    documented = {
        kind: tuple(re.findall(r"`(\w+)`", fields))
        for kind, fields in re.findall(r"^\| `([\w.]+)` \| ([^|]*) \|", section, re.M)
        if kind != "type"  # the table's head
    }
    assert documented == {kind: frame.fields for kind, frame in CLIENT_FRAMES.items()}
