"""README's table of server frames names every field the server sends in them: a client
written from the README alone knows each field it is given. Before, a stored reply's
``reply.snapshot`` (a sync of a reply that has ended) carried ``finish_reason``, ``usage``,
``charged``, ``code`` and ``message``, none of which the table named."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from conversations.models import Conversation, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

README = Path(__file__).resolve().parent.parent / "README.md"


def documented_fields() -> dict[str, set[str]]:
    section = README.read_text().split("**Server → client**")[1].split("`charged` (in a reply")[0]
    return {
        kind: set(re.findall(r"`(\w+)`", fields))
        for kind, fields in re.findall(r"^\| `([\w.]+)` \| (.*) \|$", section, re.M)
    }


async def test_the_frames_of_a_turn_and_its_syncs_carry_documented_fields_only(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    socket = await open_socket(alice, alice_conversation)
    try:
        for content in ("[[sim: say=Hello there.]]", "[[sim: fault=402]]"):
            await socket.send(
                {
                    "type": "message.send",
                    "client_id": content[-12:],
                    "content": content,
                    "params": {"logprobs": True},
                }
            )
            end = await socket.until_reply_ends()
            # A reply that has ended is read from its row.
            await socket.send({"type": "reply.sync", "reply_id": end["reply_id"], "after_seq": 0})
            await socket.until_type("reply.snapshot")
        await socket.send({"type": "reply.cancel", "reply_id": end["reply_id"]})
        await socket.until_type("error")
        await socket.send({"type": "ping"})
        await socket.until_type("pong")
    finally:
        await socket.close()
    documented = documented_fields()
    sent: dict[str, set[str]] = {}
    for frame in socket.frames:
        sent.setdefault(frame["type"], set()).update(key for key in frame if key != "type")
    assert {"reply.snapshot", "reply.completed", "reply.failed", "error"} <= set(sent)
    undocumented = {
        kind: sorted(fields - documented.get(kind, set()))
        for kind, fields in sent.items()
        if fields - documented.get(kind, set())
    }
    assert undocumented == {}
