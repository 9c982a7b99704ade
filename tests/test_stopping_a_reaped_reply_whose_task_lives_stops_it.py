"""A reply reaped while its task lived (its worker cut off from PostgreSQL for longer than
``GENERATION_STALE_SECONDS``) streams on to the sockets its worker reaches: they do not take the
reaper's ``worker_lost`` for its end (``consumers._relay``), and show Stop. Pressed, the Stop
reaches the task (``actions.reaped_while_its_task_may_live``, ``GenerationService.cancel``): it
stops, its final write (``cancelled``) takes the row back once the database answers, and its
call is charged what it used, with no stream slot left held.

Before, the Stop was refused as of a reply that "has already ended (interrupted)" while it
visibly streamed on, until a checkpoint took the row back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from tests.pgproxy import PgProxy
from tests.reaping import (
    ANSWER,
    holder_and_other,
    no_heartbeat,
    proxy,
    reaped_while_cut_off,
    streaming_reply,
    until,
    worker_proxy,
)
from tests.servers import WorkerSocket, session_cookie
from tests.support import open_socket

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore:Overriding setting DATABASES"),
]

__all__ = ["no_heartbeat", "proxy", "worker_proxy"]  # fixtures, used by name


async def test_stop_reaches_a_reaped_replys_living_task(
    no_heartbeat: None,
    alice: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    proxy: PgProxy,
) -> None:
    socket, reply_id = await streaming_reply(alice, alice_conversation)

    reaped = await reaped_while_cut_off(proxy, reply_id)
    # The page still streams it (its task lives, on this worker).
    await socket.until(lambda f: f["type"] == "reply.delta" and f["seq"] > reaped.seq + 5)
    assert not socket.of_type("reply.failed")

    await socket.send({"type": "reply.cancel", "reply_id": reply_id})
    await asyncio.sleep(1.0)  # a refusal would come at once; the task stops meanwhile
    await asyncio.to_thread(proxy.restore)  # its final write lands once the database answers
    end = await socket.until(
        lambda f: f["type"] in ("error", "reply.completed", "reply.failed"), timeout=30
    )
    await socket.close()
    assert end["reply_id"] == reply_id and end["status"] == "cancelled", end
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.CANCELLED and reply.error_code != "worker_lost"
    assert reply.content and reply.content != ANSWER and ANSWER.startswith(reply.content)
    record = await UsageRecord.objects.aget(message_id=reply_id)
    assert record.state == UsageRecord.State.SETTLED and record.outcome == "cancelled"
    account = await UsageAccount.objects.aget(user_id=alice.pk)
    assert (account.day_used, account.month_used) == (record.total_tokens,) * 2
    assert account.streams == 0


async def test_stopping_a_reaped_reply_that_no_task_holds_is_refused(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    """A reply reaped on this worker's channel, whose task this worker does not hold (it
    ended): nothing can be holding it, and the Stop is answered as of an ended reply."""
    socket = await open_socket(alice, alice_conversation)
    await socket.send({"type": "message.send", "client_id": "c1", "content": "[[sim: say=Hi.]]"})
    end = await socket.until_reply_ends()
    await Message.objects.filter(pk=end["reply_id"]).aupdate(
        status=Message.Status.INTERRUPTED,
        error_code="worker_lost",
        generation_channel=generation_service.channel,
    )

    await socket.send({"type": "reply.cancel", "reply_id": end["reply_id"]})
    error = await socket.until_type("error")
    await socket.close()
    assert error["code"] == "conflict" and error["request_type"] == "reply.cancel"
    assert error["reply_id"] == end["reply_id"] and error["status"] == "interrupted"
    assert "already ended" in error["message"]


async def test_stop_on_another_worker_reaches_a_reaped_replys_living_task(
    alice: User, alice_conversation: Conversation, worker_proxy: PgProxy
) -> None:
    """Two daphne workers on Redis; the holder reaches PostgreSQL through the proxy. Cut off,
    its reply is reaped by the other's reaper, and streams on to the other's socket through
    Redis (which resyncs from the task). Stop, pressed there, reaches the holder's task."""
    proxy = worker_proxy
    cookie = await sync_to_async(session_cookie)(alice)
    with holder_and_other(proxy, tokens_per_s=40) as (holder, other):
        on_holder = await WorkerSocket.open(holder, alice_conversation.id, cookie)
        on_other = await WorkerSocket.open(other, alice_conversation.id, cookie)
        await on_holder.send(
            {"type": "message.send", "client_id": "a", "content": f"[[sim: say={ANSWER}]]"}
        )
        reply_id = (await on_holder.until("reply.started"))["reply_id"]
        await on_other.until("reply.delta")
        await asyncio.sleep(1.5)  # a checkpoint saved
        await asyncio.to_thread(proxy.cut)
        try:
            await until(
                lambda: Message.objects.filter(pk=reply_id, error_code="worker_lost").first()
            )
            failed = await on_other.until("reply.failed")
            assert failed["code"] == "worker_lost"
            # The task streams on: the page, resynced from it, shows it streaming again.
            await on_other.until("reply.delta", timeout=10)
            await on_other.send({"type": "reply.cancel", "reply_id": reply_id})
            await asyncio.sleep(1.0)  # a refusal would come at once; the task stops meanwhile
        finally:
            await asyncio.to_thread(proxy.restore)
        while True:
            end = await on_other.until(("error", "reply.completed", "reply.failed"), timeout=40)
            if end["type"] == "error" or end.get("code") != "worker_lost":
                break
        await on_holder.close()
        await on_other.close()
        assert end["type"] == "reply.failed" and end["status"] == "cancelled", end
        reply = await Message.objects.aget(pk=reply_id)
        assert reply.status == Message.Status.CANCELLED and ANSWER.startswith(reply.content)
        assert reply.content != ANSWER
        await until(
            lambda: UsageRecord.objects.filter(message_id=reply_id, outcome="cancelled").exists()
        )
        account = await UsageAccount.objects.aget(user_id=alice.pk)
        assert account.streams == 0
