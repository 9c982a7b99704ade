"""Two daphne workers sharing Redis: a reply started on A is watched, resumed and stopped from B,
and if A dies, B marks the reply interrupted."""

from __future__ import annotations

import signal
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, Message, UsageRecord, User
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, redis_url, session_cookie, worker_process
from tests.support import SIM_KEY, reply_text

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
# 1,200 tokens, 30 s at the simulator's 40 a second: still being written when each test acts
# on it, however slowly a loaded machine runs the test's steps.
ANSWER = " ".join(f"part{i}" for i in range(600))


@pytest.fixture
def workers(chat_model: Any) -> Any:
    with running_simulator(api_key=SIM_KEY, tokens_per_s=40, seed=3) as upstream:
        env = {
            "REDIS_URL": redis_url(),
            "GENERATION_HEARTBEAT_SECONDS": "1",
            "GENERATION_STALE_SECONDS": "4",
        }
        with (
            daphne_worker(upstream, SIM_KEY, **env) as a,
            daphne_worker(upstream, SIM_KEY, **env) as b,
        ):
            yield a, b


async def test_a_reply_started_on_one_worker_is_watched_resumed_and_stopped_from_another(
    alice: User, alice_conversation: Conversation, workers: tuple[str, str]
) -> None:
    worker_a, worker_b = workers
    cookie = await sync_to_async(session_cookie)(alice)
    on_a = await WorkerSocket.open(worker_a, alice_conversation.id, cookie)
    on_b = await WorkerSocket.open(worker_b, alice_conversation.id, cookie)
    await on_a.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
    )
    # B watches the deltas of a task running on A.
    first = await on_b.until("reply.delta")
    reply_id = first["reply_id"]
    for _ in range(3):
        await on_b.until("reply.delta")
    # A new socket on B joins mid-stream: it was sent none of the reply, so the server syncs it
    # whole. (Its page syncs it too, from what the page held; the two requests race, and the
    # first answer serves both, which is why the append below is asked on a socket that
    # already holds the reply.)
    resumed = await WorkerSocket.open(worker_b, alice_conversation.id, cookie)
    joined = await resumed.until("reply.snapshot")
    assert joined["mode"] == "full"
    for _ in range(3):
        await resumed.until("reply.delta")
    # It resumes from the sequence number it holds: the snapshot comes from A's task (the
    # row, B's fallback, could only answer whole).
    held = resumed.frames[-1]["seq"]
    kept = list(resumed.frames)
    await resumed.send({"type": "reply.sync", "reply_id": reply_id, "after_seq": held})
    snapshot = await resumed.until("reply.snapshot")
    assert (
        snapshot["status"] == "streaming"
        and snapshot["mode"] == "append"
        and snapshot["after_seq"] == held
    )
    # A client ignores the deltas that were on their way while it waited for the snapshot.
    since_snapshot = len(resumed.frames) - 1
    for _ in range(3):
        await resumed.until("reply.delta")
    # B stops the reply that A's task is streaming.
    await resumed.send({"type": "reply.cancel", "reply_id": reply_id})
    end = await on_a.until(("reply.completed", "reply.failed"))
    assert end["status"] == "cancelled"
    end_b = await resumed.until(("reply.completed", "reply.failed"))
    assert end_b == end
    # What B's resumed socket rebuilt (up to `held`, then the snapshot and the rest).
    rebuilt = reply_text(kept + resumed.frames[since_snapshot:], reply_id)
    reply = await Message.objects.aget(pk=reply_id)
    assert reply.status == Message.Status.CANCELLED
    assert rebuilt == reply.content and ANSWER.startswith(reply.content)
    for socket in (on_a, on_b, resumed):
        await socket.close()


async def test_when_a_worker_dies_mid_reply_another_marks_it_interrupted(
    alice: User, alice_conversation: Conversation, workers: tuple[str, str]
) -> None:
    worker_a, worker_b = workers
    cookie = await sync_to_async(session_cookie)(alice)
    on_a = await WorkerSocket.open(worker_a, alice_conversation.id, cookie)
    on_b = await WorkerSocket.open(worker_b, alice_conversation.id, cookie)
    await on_a.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
    )
    delta = await on_b.until("reply.delta")
    for _ in range(30):  # past the first checkpoint
        await on_b.until("reply.delta")
    daphne_a = worker_process(worker_a)
    daphne_a.send_signal(signal.SIGKILL)
    failed = await on_b.until("reply.failed", timeout=60)
    assert failed["reply_id"] == delta["reply_id"] and failed["code"] == "worker_lost"
    reply = await Message.objects.aget(pk=delta["reply_id"])
    assert (
        reply.status == Message.Status.INTERRUPTED
        and reply.content
        and ANSWER.startswith(reply.content)
    )
    record = await UsageRecord.objects.aget(message=reply)
    assert record.state == UsageRecord.State.SETTLED and record.reserved_tokens == 0
    await on_b.close()
