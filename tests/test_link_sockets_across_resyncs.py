"""A share link's socket through the two resyncs: a reply reaped after its process died (the
viewer had been sent deltas the row never stored), and an append snapshot (it says what it
appends to)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import sharing
from conversations.generation import group_name
from conversations.models import Conversation, Message, User
from tests.support import open_socket
from tests.test_reaper import orphan_reply

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

ANSWER = " ".join(f"step{i}" for i in range(200))


def start_another_thread(conversation: Conversation, user: User) -> None:
    """A newer root message: the link now shows that branch, not the reaped reply's."""
    Message.objects.create(
        conversation=conversation,
        parent=None,
        role=Message.Role.USER,
        author=user,
        content="Another thread",
        client_id="other",
    )


async def test_a_link_viewer_is_told_that_a_reaped_reply_off_its_branch_ended(
    alice: User,
    charlie: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
) -> None:
    reply = await sync_to_async(orphan_reply)(alice, alice_conversation, heartbeat_age=120)
    await sync_to_async(start_another_thread)(alice_conversation, alice)
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    viewer = await open_socket(charlie, alice_conversation, link=token)
    reply_id = str(reply.pk)
    group = group_name(alice_conversation.id)
    for seq, text in ((8, " Lost A."), (9, " Lost B.")):  # as the dead process published them
        await generation_service.publish(
            group, {"type": "reply.delta", "reply_id": reply_id, "seq": seq, "content": text}
        )
    await viewer.until(lambda f: f["type"] == "reply.delta" and f["seq"] == 9, timeout=10)

    assert await generation_service.reap() == 1
    failed = await viewer.until(
        lambda f: f["type"] == "reply.failed" and f.get("reply_id") == reply_id, timeout=10
    )
    assert failed["status"] == "interrupted"
    [consumer] = generation_service.rooms[group].sockets
    assert reply_id not in consumer.syncing  # later frames of the reply are not held
    await viewer.close()


async def test_a_link_viewers_append_snapshot_says_what_it_appends_to(
    alice: User,
    charlie: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    generation_service: Any,
) -> None:
    _, token = await sync_to_async(sharing.create_share_link)(alice, alice_conversation.id)
    owner = await open_socket(alice, alice_conversation)
    viewer = await open_socket(charlie, alice_conversation, link=token)
    await owner.send(
        {"type": "message.send", "client_id": "a1", "content": f"[[sim: say={ANSWER}]]"}
    )
    delta = await viewer.until(lambda f: f["type"] == "reply.delta" and f["seq"] >= 3, timeout=20)
    await viewer.send({"type": "reply.sync", "reply_id": delta["reply_id"], "after_seq": 2})
    shown = await viewer.until_type("reply.snapshot")
    assert shown["mode"] == "append" and shown["after_seq"] == 2
    await owner.close()
    await viewer.close()
