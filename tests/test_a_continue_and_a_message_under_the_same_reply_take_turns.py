"""A Continue of a reply and a message sent under that same reply, at the same moment (two
tabs, or the owner and a collaborator): exactly one goes through, the other is told why.

Before, the message checked the reply on a read without a lock, then its one statement took
the user's usage row (admission) before the reply's row (the new message's foreign key), the
opposite order of a Continue (the reply's row, then admission). So the two deadlocked (one
answered ``internal_error`` after a second) or, when the Continue committed first, both went
through: the reply was rewritten in place under the message written from its old text. Now
the message's statement locks the reply first and checks it once locked.

Both orders are forced: an outside transaction holds the user's usage row, so the first
action waits for it holding what it took before admission, and the second comes meanwhile."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest
from django.db import connection

from conversations.models import Conversation, Message, UsageRecord, User
from tests.support import open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]


def _hold_usage_row(user: User) -> psycopg.Connection[Any]:
    db = connection.settings_dict
    holder = psycopg.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 5432),
        user=db["USER"],
        dbname=db["NAME"],
        password=db["PASSWORD"] or None,
    )
    holder.execute(
        "SELECT 1 FROM conversations_usageaccount WHERE user_id = %s FOR UPDATE", [user.pk]
    )
    return holder


async def _waiting_on_locks(holder: psycopg.Connection[Any], count: int) -> None:
    """Until ``count`` sessions other than ``holder`` wait for a lock."""
    with psycopg.connect(holder.info.dsn, password=connection.settings_dict["PASSWORD"]) as probe:
        probe.autocommit = True
        for _ in range(500):
            waiting = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            ).fetchone()
            if waiting and waiting[0] >= count:
                return
            await asyncio.sleep(0.01)
    raise AssertionError(f"{count} sessions never waited for a lock")


async def _outcome(socket: Any, kind: str, reply_id: str) -> dict[str, Any]:
    """The answer to this socket's action: its error, or the frame saying it went through
    (every socket of the conversation sees the other's frames too)."""

    def answered(frame: dict[str, Any]) -> bool:
        if frame["type"] == "error":
            return True
        if kind == "continue":
            return frame["type"] == "reply.started" and frame["reply_id"] == reply_id
        message = frame.get("message") or {}
        return frame["type"] == "message.created" and message.get("client_id") == "c2"

    frame: dict[str, Any] = await socket.until(answered, timeout=30)
    return frame


@pytest.mark.parametrize("first", ["continue", "send"])
async def test_one_of_the_two_goes_through(
    alice: User,
    alice_conversation: Conversation,
    simulator: str,
    generation_service: Any,
    first: str,
) -> None:
    tab_a = await open_socket(alice, alice_conversation)
    tab_b = await open_socket(alice, alice_conversation)
    try:
        await tab_a.send(
            {
                "type": "message.send",
                "client_id": "c1",
                "content": "[[sim: finish=length say=The first half of an answer]]",
            }
        )
        cut = await tab_a.until_reply_ends()
        assert cut["finish_reason"] == "length", cut
        await tab_b.until_reply_ends()
        reply_id = cut["reply_id"]
        frames = {
            "continue": (tab_a, {"type": "reply.continue", "reply_id": reply_id}),
            "send": (
                tab_b,
                {
                    "type": "message.send",
                    "client_id": "c2",
                    "parent_id": reply_id,
                    "content": "[[sim: say=A follow-up.]]",
                },
            ),
        }
        second = "send" if first == "continue" else "continue"
        holder = _hold_usage_row(alice)
        try:
            await frames[first][0].send(frames[first][1])
            await _waiting_on_locks(holder, 1)  # holding the reply's row, waiting to admit
            await frames[second][0].send(frames[second][1])
            await _waiting_on_locks(holder, 2)  # waiting for the first
        finally:
            holder.commit()
            holder.close()
        outcomes = {
            kind: await _outcome(frames[kind][0], kind, reply_id) for kind in (first, second)
        }

        assert outcomes[first]["type"] != "error", outcomes[first]
        refused = outcomes[second]
        assert (refused["type"], refused["code"]) == ("error", "conflict"), refused
        await tab_a.until_reply_ends()
        reply = await Message.objects.aget(pk=reply_id)
        children = [m async for m in Message.objects.filter(parent_id=reply_id)]
        if first == "continue":
            assert children == [] and len(reply.content) > len("The first half of an answer")
        else:
            assert [m.content for m in children] == ["[[sim: say=A follow-up.]]"]
            assert reply.content == "The first half of an answer"
        # One call per action that went through: the first reply's and the winner's.
        calls = UsageRecord.objects.filter(user=alice, purpose="chat")
        assert await calls.acount() == 2
    finally:
        await tab_a.close()
        await tab_b.close()
