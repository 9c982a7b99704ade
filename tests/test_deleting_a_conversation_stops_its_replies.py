"""Deleting a conversation while one of its replies is being written stops that reply, wherever
it runs: the upstream call is cancelled, the ledger row is settled to what was used (no
reservation left, nothing for the reaper), and the sockets open on the conversation are told
it is gone and closed. The reply ran to the end against the upstream, charged in full, though
nobody could ever read it."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import websockets
from asgiref.sync import sync_to_async

from conversations import actions, quota
from conversations.models import Conversation, Message, UsageAccount, UsageRecord, User
from simulator import count_tokens
from simulator.testing import running_simulator
from tests.servers import WorkerSocket, daphne_worker, redis_url, session_cookie
from tests.support import SIM_KEY, admin_form, client_for, open_socket
from tests.test_deleting_an_account_closes_its_views import closed_code

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

LONG = " ".join(f"w{i}" for i in range(300))
# The whole answer: at 40 tokens/s, about 13 s of streaming.
FULL = count_tokens(LONG)


def delete(how: str, conversation: Conversation, staff: User) -> None:
    owner = conversation.owner
    if how == "delete page":
        response = client_for(staff).post(
            f"/admin/conversations/conversation/{conversation.pk}/delete/", {"post": "yes"}
        )
    elif how == "changelist action":
        response = client_for(staff).post(
            "/admin/conversations/conversation/",
            {"action": "delete_selected", "_selected_action": [conversation.pk], "post": "yes"},
        )
    elif how == "admin form":  # "deleted at" filled in on its admin page (undoable)
        page = f"/admin/conversations/conversation/{conversation.pk}/change/"
        admin = client_for(staff)
        form = admin_form(admin, page, deleted_at_0="2026-01-02", deleted_at_1="10:00:00")
        response = admin.post(page, form)
    elif how == "owner deleted":
        response = client_for(staff).post(
            f"/admin/conversations/user/{owner.pk}/delete/", {"post": "yes"}
        )
    else:  # the owner's own delete, in the chat (undoable)
        response = client_for(owner).post(f"/c/{conversation.pk}/delete/")
    assert response.status_code in (200, 302), response.content.decode()[:2000]


async def settled(record_id: int, timeout: float = 30) -> UsageRecord:
    """The ledger row once its call has been settled."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        record = await UsageRecord.objects.aget(pk=record_id)
        if record.state == UsageRecord.State.SETTLED:
            return record
        assert asyncio.get_running_loop().time() < deadline, "the call was never settled"
        await asyncio.sleep(0.1)


async def assert_nothing_left_reserved() -> None:
    assert not await UsageRecord.objects.filter(state=UsageRecord.State.RESERVED).aexists()
    assert not await UsageAccount.objects.filter(streams__gt=0).aexists()
    # Nothing for the reaper: no reply row left active, no reservation however old.
    assert not await Message.objects.filter(status__in=actions.ACTIVE).aexists()
    assert await sync_to_async(quota.release_orphaned_reservations)(timedelta(0)) == 0


@pytest.mark.parametrize(
    "how", ["delete page", "changelist action", "admin form", "owner deleted", "owner's own delete"]
)
async def test_deleting_a_conversation_stops_its_reply_and_closes_its_sockets(
    alice: User,
    staff: User,
    alice_conversation: Conversation,
    slow_simulator: str,
    generation_service: Any,
    how: str,
) -> None:
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={LONG}]]"}
    )
    await socket.until_type("reply.delta")
    reply_id = socket.of_type("message.created")[1]["message"]["id"]
    record = await UsageRecord.objects.aget(message_id=reply_id)

    await sync_to_async(delete)(how, alice_conversation, staff)

    gone = await socket.until_type("error")
    assert (gone["code"], gone["message"]) == ("not_found", "This conversation was deleted.")
    assert await closed_code(socket) == 4404
    # The upstream call was cancelled, and its row settled to what it had produced.
    record = await settled(record.pk)
    assert (record.outcome, record.reserved_tokens) == ("cancelled", 0)
    assert 0 < record.completion_tokens < FULL // 2
    assert record.user_id == (None if how == "owner deleted" else alice.pk)
    assert record.username == ("alice" if how == "owner deleted" else "")
    if how in ("owner's own delete", "admin form"):  # undoable: the reply stays, stopped
        reply = await Message.objects.aget(pk=reply_id)
        assert reply.status == Message.Status.CANCELLED
        assert reply.content and LONG.startswith(reply.content) and reply.content != LONG
    else:
        assert not await Message.objects.filter(pk=reply_id).aexists()
    assert not generation_service.tasks
    await assert_nothing_left_reserved()


async def test_a_continuation_whose_conversation_is_deleted_before_it_starts_calls_nothing(
    alice: User, alice_conversation: Conversation, simulator: str, generation_service: Any
) -> None:
    """Deleted between the continuation's commit and its task's start, the reply's row (and
    the link from its ledger row to it) is gone: the task, reading it back, gave up and left
    the call reserved; and the stop, sent before the task existed, was lost."""
    socket = await open_socket(alice, alice_conversation)
    await socket.send(
        {
            "type": "message.send",
            "client_id": "c1",
            "content": f"[[sim: say={LONG}]]",
            "params": {"max_tokens": 5},
        }
    )
    cut = await socket.until_reply_ends()
    assert cut["finish_reason"] == "length"
    turn = await sync_to_async(actions.continue_reply)(
        alice, alice_conversation.id, reply_id=cut["reply_id"], channel=generation_service.channel
    )
    record = await UsageRecord.objects.aget(
        message_id=cut["reply_id"], state=UsageRecord.State.RESERVED
    )

    await sync_to_async(Conversation.objects.filter(pk=alice_conversation.pk).delete)()
    # The process answers its channel's requests in order: once a snapshot request sent after
    # the delete is answered, the delete's stop has been handled too.
    answers = await generation_service.layer.new_channel()
    await generation_service.layer.send(
        generation_service.channel,
        {
            "type": "generation.snapshot",
            "reply_id": str(uuid.uuid4()),
            "after_seq": 0,
            "reply_channel": answers,
        },
    )
    assert (await generation_service.layer.receive(answers))["type"] == "reply.gone"

    task = generation_service.start(
        turn.reply.pk, alice_conversation.id, actions.prepared_context(turn.reply)
    )
    assert task.task is not None
    await asyncio.wait_for(task.task, 10)

    record = await UsageRecord.objects.aget(pk=record.pk)
    assert (record.state, record.outcome) == (UsageRecord.State.SETTLED, "cancelled")
    assert (record.completion_tokens, record.reserved_tokens, record.cost) == (0, 0, 0)
    await assert_nothing_left_reserved()
    await socket.close()


@pytest.fixture
def workers(chat_model: Any) -> Any:
    with running_simulator(api_key=SIM_KEY, tokens_per_s=40, seed=3) as upstream:
        env = {"REDIS_URL": redis_url()}
        with (
            daphne_worker(upstream, SIM_KEY, **env) as a,
            daphne_worker(upstream, SIM_KEY, **env) as b,
        ):
            yield a, b


def delete_in_the_admin_of(worker: str, cookie: str, conversation: Conversation) -> None:
    """Staff delete the conversation on its admin page, served by ``worker``."""
    page = f"/admin/conversations/conversation/{conversation.pk}/delete/"
    with httpx.Client(base_url=worker, cookies={"sessionid": cookie}) as browser:
        confirm = browser.get(page)
        assert confirm.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', confirm.text)
        assert token is not None
        done = browser.post(page, data={"post": "yes", "csrfmiddlewaretoken": token[1]})
        assert done.status_code == 302, done.text[:2000]


async def test_a_reply_running_on_another_worker_stops_when_its_conversation_is_deleted(
    alice: User, staff: User, alice_conversation: Conversation, workers: tuple[str, str]
) -> None:
    worker_a, worker_b = workers
    on_a = await WorkerSocket.open(
        worker_a, alice_conversation.id, await sync_to_async(session_cookie)(alice)
    )
    await on_a.send({"type": "message.send", "client_id": "c1", "content": f"[[sim: say={LONG}]]"})
    delta = await on_a.until("reply.delta")
    record = await UsageRecord.objects.aget(message_id=delta["reply_id"])

    staff_cookie = await sync_to_async(session_cookie)(staff)
    await sync_to_async(delete_in_the_admin_of)(worker_b, staff_cookie, alice_conversation)

    gone = await on_a.until("error")
    assert gone["code"] == "not_found"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await on_a.receive()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    record = await settled(record.pk)
    assert (record.outcome, record.reserved_tokens) == ("cancelled", 0)
    assert 0 < record.completion_tokens < FULL // 2
    await assert_nothing_left_reserved()


def stop_queries(queries: list[dict[str, str]]) -> int:
    """The queries that read replies to stop (only they select ``generation_channel``)."""
    return sum('"generation_channel"' in q["sql"] and "SELECT" in q["sql"] for q in queries)


@pytest.mark.parametrize("how", ["account", "accounts", "conversations"])
def test_a_delete_that_takes_many_conversations_reads_their_replies_once(
    alice: User, bob: User, chat_model: Any, how: str
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for owner in (alice, bob):
        Conversation.objects.bulk_create(
            Conversation(owner=owner, model=chat_model, title=f"c{i}") for i in range(20)
        )
    with CaptureQueriesContext(connection) as queries:
        if how == "account":
            alice.delete()
        elif how == "accounts":
            User.objects.filter(pk__in=[alice.pk, bob.pk]).delete()
        else:
            Conversation.objects.filter(owner__in=[alice, bob]).delete()
    assert not Conversation.objects.filter(owner=alice.pk).exists()
    # One query for all of them (the ids of what the delete takes, then their replies).
    assert stop_queries(queries.captured_queries) == 1


@pytest.mark.parametrize("how", ["delete page", "changelist action"])
async def test_deleting_an_account_stops_the_replies_of_all_its_conversations(
    alice: User,
    bob: User,
    staff: User,
    chat_model: Any,
    slow_simulator: str,
    generation_service: Any,
    how: str,
) -> None:
    """Read at once for all of them, the replies of every conversation of the account stop,
    and no one else's."""
    conversations = [
        await Conversation.objects.acreate(owner=owner, model=chat_model, title=title)
        for owner, title in ((alice, "one"), (alice, "two"), (bob, "Bob's"))
    ]
    records = []
    for conversation in conversations:
        socket = await open_socket(conversation.owner, conversation)
        await socket.send(
            {"type": "message.send", "client_id": "c1", "content": f"[[sim: say={LONG}]]"}
        )
        await socket.until_type("reply.delta")
        reply_id = socket.of_type("message.created")[1]["message"]["id"]
        records.append(await UsageRecord.objects.aget(message_id=reply_id))

    admin = await sync_to_async(client_for)(staff)
    if how == "delete page":
        response = await sync_to_async(admin.post)(
            f"/admin/conversations/user/{alice.pk}/delete/", {"post": "yes"}
        )
    else:
        response = await sync_to_async(admin.post)(
            "/admin/conversations/user/",
            {"action": "delete_selected", "_selected_action": [alice.pk], "post": "yes"},
        )
    assert response.status_code == 302

    for record in records[:2]:
        record = await settled(record.pk)
        assert (record.outcome, record.reserved_tokens) == ("cancelled", 0)
        assert 0 < record.completion_tokens < FULL // 2
    # Bob's reply runs on (told at the same moment as Alice's, had it been told).
    bobs = await UsageRecord.objects.aget(pk=records[2].pk)
    assert bobs.state == UsageRecord.State.RESERVED
    assert (await Message.objects.aget(pk=bobs.message_id)).status in actions.ACTIVE
