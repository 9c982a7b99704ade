"""A transactional test's flush waits for the history copies of the API calls it made, not
only for their settlements.

A key that saves history has each call copied to a conversation just after the call is
settled, in a transaction of its own on the worker. The wait before a test's flush
(``conftest._api_calls_settled_before_the_flush``) looked only for calls still reserved: a
test that ended right after a saving key's answer had its tables truncated while that copy
was being written, and the truncation and the copy can deadlock (or the copy be left for the
next test). Real parts: a daphne worker, the simulator, a second database session that holds
the copy back (a lock on the message table) until a moment after the settlement."""

from __future__ import annotations

import threading

import pytest

from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User
from tests.reaping import database_session
from tests.test_api_support import bearer, calls_written_before_a_flush, chat, make_key
from tests.test_two_admins_move_the_default_policy_at_once import wait_for_lock_waiters

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_the_wait_before_a_flush_covers_a_copy_written_after_the_settlement(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    key = make_key(alice, save_history=True)
    with database_session() as holder:
        holder.execute(f"LOCK TABLE {Message._meta.db_table} IN SHARE MODE")
        response = chat(base, bearer(key), messages=[{"role": "user", "content": "Hi"}])
        assert response.status_code == 200, response.text
        wait_for_lock_waiters(1)  # the copy, settled and now held back
        assert UsageRecord.objects.get(user=alice).state == UsageRecord.State.SETTLED
        released = threading.Timer(0.5, holder.rollback)
        released.start()
        try:
            calls_written_before_a_flush()
        finally:
            released.join()
    # What the flush would have met: the call's copy, written in full.
    record = UsageRecord.objects.get(user=alice)
    assert record.conversation_id is not None, "the wait ended before the copy was written"
    assert record.conversation == Conversation.objects.get(owner=alice)
