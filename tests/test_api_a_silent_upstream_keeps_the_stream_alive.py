"""A stream whose upstream goes silent after it started (a pause in reasoning, a stall) still
sends its client a ``: keep-alive`` comment within KEEPALIVE_INTERVAL_S, and more while the
silence lasts: a client or proxy reading with a shorter timeout than the upstream's silence
keeps the stream. Before, keep-alives went out only until the first delta; after it the client
heard nothing until the upstream's idle timeout (180 s), and dropped the stream long before."""

from __future__ import annotations

import time

import httpx
import pytest

from conversations.api_asgi import KEEPALIVE_INTERVAL_S
from conversations.models import ModelConfig, UsageRecord, User
from tests.test_api_support import bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_keep_alives_flow_while_a_started_stream_waits_on_the_upstream(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    body = {
        "model": "deepseek-chat",
        "stream": True,
        # The simulator sends the role chunk and one delta, then nothing until we hang up.
        "messages": [{"role": "user", "content": "[[sim: stall_after=2]] [[sim: say=one two]]"}],
    }
    lines: list[tuple[float, str]] = []
    # A read timeout a little past the interval: a silent stream fails here.
    timeout = httpx.Timeout(10, read=KEEPALIVE_INTERVAL_S + 3)
    with httpx.stream(
        "POST",
        base + "/v1/chat/completions",
        headers=bearer(make_key(alice)),
        json=body,
        timeout=timeout,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                lines.append((time.monotonic(), line))
            if sum(1 for _, text in lines if text == ": keep-alive") == 2:
                break

    kinds = [text.split(":")[0] if text.startswith("data:") else text for _, text in lines]
    # The delta came at once and went out as it came; the keep-alives only after it.
    assert kinds == ["data", "data", ": keep-alive", ": keep-alive"], kinds
    assert '"one' in lines[1][1]
    last_data, first_beat, second_beat = lines[1][0], lines[2][0], lines[3][0]
    # Not before half the interval of silence, and not after all of it (a second of slack
    # for a loaded machine); then again while the silence lasts.
    assert KEEPALIVE_INTERVAL_S / 2 - 0.5 <= first_beat - last_data <= KEEPALIVE_INTERVAL_S + 1
    assert second_beat - first_beat <= KEEPALIVE_INTERVAL_S + 1

    # Hanging up during the silence cancels the call, charged what it produced.
    deadline = time.monotonic() + 15
    while UsageRecord.objects.filter(user=alice, state="settled").count() == 0:
        assert time.monotonic() < deadline, "the call was not settled after the client left"
        time.sleep(0.2)
    record = UsageRecord.objects.get(user=alice)
    assert record.outcome == "cancelled" and record.reserved_tokens == 0
    assert record.completion_tokens > 0
