"""A reply.sync whose after_seq is past any sequence number a reply can have gets an error
naming after_seq, and the socket goes on relaying the reply: across workers the request for
the snapshot travels through Redis, whose encoding cannot carry such an integer."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations.models import Conversation, User
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, redis_url, session_cookie
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
ANSWER = " ".join(f"part{i}" for i in range(150))


async def test_an_after_seq_past_any_sequence_is_refused_and_the_reply_still_arrives(
    alice: User, alice_conversation: Conversation, chat_model: Any
) -> None:
    with running_simulator(api_key=SIM_KEY, tokens_per_s=40, seed=3) as upstream:
        env = {"REDIS_URL": redis_url()}
        with (
            daphne_worker(upstream, SIM_KEY, **env) as worker_a,
            daphne_worker(upstream, SIM_KEY, **env) as worker_b,
        ):
            cookie = await sync_to_async(session_cookie)(alice)
            on_a = await WorkerSocket.open(worker_a, alice_conversation.id, cookie)
            on_b = await WorkerSocket.open(worker_b, alice_conversation.id, cookie)
            await on_a.send(
                {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={ANSWER}]]"}
            )
            reply_id = (await on_b.until("reply.delta"))["reply_id"]
            await on_b.send({"type": "reply.sync", "reply_id": reply_id, "after_seq": 2**64})
            answer = await on_b.until(("error", "reply.snapshot"))
            assert answer["type"] == "error", answer
            assert answer["code"] == "invalid_parameter" and answer["param"] == "after_seq"
            # The reply's frames still reach B's socket.
            await on_b.until("reply.delta", timeout=5)
            await on_a.send({"type": "reply.cancel", "reply_id": reply_id})
            end = await on_b.until(("reply.completed", "reply.failed"))
            assert end["status"] == "cancelled"
            await on_a.close()
            await on_b.close()
