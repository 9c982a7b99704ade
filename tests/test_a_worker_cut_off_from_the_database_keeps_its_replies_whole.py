"""Two workers on Redis; one (the holder) loses its connections to PostgreSQL while it streams a
reply, for longer than ``GENERATION_STALE_SECONDS``; the other's reaper, which still reaches the
database, marks the reply ``interrupted`` (``worker_lost``) and says so to the conversation's
sockets. Once the holder reaches the database again its final write wins: the row holds the
whole answer, ``complete``, its call charged what the provider counted, and the holder's socket
ends up shown the reply complete.

Before, the holder acted on the reaper's ``reply.failed`` as on a dead process's: it read the
stored reply for its socket from the database it could not reach, failed, and held every later
frame of the reply for that socket — the page showed the reply streaming until it reconnected."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from tests.pgproxy import PgProxy
from tests.reaping import holder_and_other, worker_proxy
from tests.servers import WorkerSocket, session_cookie

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

ANSWER = " ".join(f"word{i}" for i in range(80))  # 4 s at 20 tokens a second
__all__ = ["worker_proxy"]  # a fixture, used by name


async def test_a_reply_reaped_elsewhere_while_its_worker_is_cut_off_is_saved_whole(
    alice: User, alice_conversation: Conversation, worker_proxy: PgProxy
) -> None:
    proxy = worker_proxy
    cookie = await sync_to_async(session_cookie)(alice)
    with holder_and_other(proxy, tokens_per_s=20) as (holder, _):
        socket = await WorkerSocket.open(holder, alice_conversation.id, cookie)
        await socket.send(
            {"type": "message.send", "client_id": "a", "content": f"[[sim: say={ANSWER}]]"}
        )
        await socket.until("reply.delta")
        await asyncio.sleep(1.5)  # a checkpoint saved
        reply_id = socket.frames[-1]["reply_id"]
        await asyncio.to_thread(proxy.cut)
        try:
            for _ in range(300):  # the other worker's reaper gives up on it
                reply = await Message.objects.aget(pk=reply_id)
                if reply.status == Message.Status.INTERRUPTED:
                    break
                await asyncio.sleep(0.1)
            assert reply.error_code == "worker_lost"
            assert reply.content != ANSWER
            # Cut off for longer than its pool waits for a connection (5 s) after the reaper's
            # word reaches it: what it reads for its sockets then fails.
            await asyncio.sleep(8)
        finally:
            await asyncio.to_thread(proxy.restore)
        while True:  # what the page is told last about the reply: complete
            end = await socket.until(("reply.completed", "reply.snapshot", "reply.failed"))
            if end["reply_id"] == reply_id and end.get("status") == "complete":
                break
        reply = await Message.objects.aget(pk=reply_id)
        assert reply.status == Message.Status.COMPLETE
        assert reply.content == ANSWER
        assert reply.finish_reason == "stop" and reply.error_code == ""
        record = await UsageRecord.objects.aget(message_id=reply.pk)
        assert record.outcome == "complete" and not record.estimated
        account = await UsageAccount.objects.aget(user_id=alice.pk)
        assert account.day_used == record.total_tokens and account.streams == 0
        await socket.close()
