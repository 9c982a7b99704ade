"""A client that hangs up mid-stream stops the upstream call; the call is charged for what it
used and nothing stays reserved."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from conversations.models import ModelConfig, UsageAccount, UsageRecord, User
from tests.test_api_support import bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _wait_for_settlement(user: User) -> UsageRecord:
    deadline = time.monotonic() + 15
    while True:
        record = UsageRecord.objects.get(user=user)
        if record.state == UsageRecord.State.SETTLED:
            return record
        assert time.monotonic() < deadline, "the call was never settled"
        time.sleep(0.1)


@contextlib.contextmanager
def streamed_chat(base: str, user: User, content: str) -> Iterator[httpx.Response]:
    """A streamed completion of ``content`` with a new key of ``user``'s, already answered 200;
    leaving the block closes the connection (mid-stream, if it has not ended)."""
    with httpx.stream(
        "POST",
        base + "/v1/chat/completions",
        headers=bearer(make_key(user)),
        json={
            "model": "deepseek-chat",
            "messages": [{"role": "user", "content": content}],
            "stream": True,
        },
        timeout=30,
    ) as response:
        assert response.status_code == 200
        yield response


def _counters(user: User) -> dict[str, int]:
    account = UsageAccount.objects.get(user=user)
    return {"day": account.day_used, "month": account.month_used, "streams": account.streams}


def test_hanging_up_mid_stream_charges_what_was_used_and_frees_the_rest(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    words = " ".join(f"word{i}" for i in range(400))
    content = f"[[sim: tokens_per_s=40]][[sim: say={words}]]"
    received = 0
    with streamed_chat(base, alice, content) as response:
        for line in response.iter_lines():
            if '"content":"' in line:
                received += 1
            if received >= 5:
                break  # leaving the block closes the connection mid-stream
    record = _wait_for_settlement(alice)
    assert record.outcome == "cancelled" and record.estimated
    assert record.reserved_tokens == 0
    # Charged for the prompt and the part of the answer that was produced, not the rest.
    assert 0 < record.completion_tokens < 400
    assert record.total_tokens == record.prompt_tokens + record.completion_tokens
    counters = _counters(alice)
    assert counters["day"] == record.total_tokens and counters["streams"] == 0
    assert not UsageRecord.objects.filter(state=UsageRecord.State.RESERVED).exists()


def test_hanging_up_after_the_usage_chunk_charges_the_providers_count(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    # The simulator sends the whole answer and its usage, then holds the stream open without
    # [DONE]: the client gives up waiting. The provider's count had come; no estimate.
    answer = "Five short words, then silence."
    content = f"Say it. [[sim: stall_after=1000 say={answer}]]"
    text = ""
    with streamed_chat(base, alice, content) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[len("data: ") :])
                for choice in chunk["choices"]:
                    text += choice["delta"].get("content") or ""
            if text == answer:
                break
        time.sleep(0.5)  # the finish chunk, with usage, follows the last word at once
    record = _wait_for_settlement(alice)
    assert record.outcome == "cancelled" and not record.estimated
    assert record.reserved_tokens == 0 and record.completion_tokens > 0
    assert _counters(alice)["day"] == record.total_tokens


def test_hanging_up_on_a_non_streaming_call_frees_the_reservation(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    content = "[[sim: first_token_latency=3]] [[sim: say=late]]"
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            base + "/v1/chat/completions",
            headers=bearer(make_key(alice)),
            json={"model": "deepseek-chat", "messages": [{"role": "user", "content": content}]},
            timeout=httpx.Timeout(5, read=1),
        )
    record = _wait_for_settlement(alice)
    assert record.outcome == "cancelled" and record.reserved_tokens == 0
    assert record.completion_tokens == 0 and record.total_tokens == record.prompt_tokens
    assert _counters(alice)["streams"] == 0


def test_hanging_up_on_a_non_streaming_call_mid_answer_charges_what_was_produced(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    """The upstream answer of a non-streamed call is read as a stream: a client that leaves
    while the model writes (an SDK's read timeout, say) is charged what had been written, as a
    stream would be, not only its prompt."""
    words = " ".join(f"w{i}" for i in range(400))
    content = f"[[sim: tokens_per_s=50 say={words}]]"  # ~8 s to write
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            base + "/v1/chat/completions",
            headers=bearer(make_key(alice)),
            json={"model": "deepseek-chat", "messages": [{"role": "user", "content": content}]},
            timeout=httpx.Timeout(10, read=2),
        )
    record = _wait_for_settlement(alice)
    assert record.outcome == "cancelled" and record.estimated and record.reserved_tokens == 0
    # About 2 s of 50 tokens a second (the simulator's pace), far from the whole answer.
    assert 40 <= record.completion_tokens < 400
    assert _counters(alice)["day"] == record.total_tokens
    assert _counters(alice)["streams"] == 0
