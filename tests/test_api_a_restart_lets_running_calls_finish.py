"""On SIGTERM a worker lets the API calls it is serving finish for the grace period, as it
does the chat's replies (``SHUTDOWN_GRACE_SECONDS``), and refuses new ones with a 503 its
clients retry elsewhere; a call still running when the grace ends is stopped, charged what it
used, and told why (its stream's last event ``server_shutting_down``). Before, the API's calls
were cut at once, with no error event and no ``[DONE]``, on every restart."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from simulator.testing import running_simulator
from tests.servers import daphne_worker, worker_process
from tests.support import SIM_KEY
from tests.test_api_support import bearer, make_key, sse_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def stream(base: str, key: str, words: int, out: dict[str, Any]) -> None:
    body = {
        "model": "deepseek-chat",
        "stream": True,
        "messages": [{"role": "user", "content": "[[sim: say=" + " ".join(["w"] * words) + "]]"}],
    }
    with httpx.stream(
        "POST", f"{base}/v1/chat/completions", json=body, headers=bearer(key), timeout=60
    ) as response:
        out["status"] = response.status_code
        text = ""
        for piece in response.iter_text():
            text += piece
            out.setdefault("first", time.monotonic())
        out["body"] = text


def test_a_call_within_the_grace_finishes_and_one_past_it_is_told_why(
    alice: User, chat_model: ModelConfig
) -> None:
    key = make_key(alice)
    short: dict[str, Any] = {}
    long: dict[str, Any] = {}
    with (
        running_simulator(api_key=SIM_KEY, tokens_per_s=20, seed=1) as upstream,
        daphne_worker(upstream, SIM_KEY, SHUTDOWN_GRACE_SECONDS="3") as base,
    ):
        threads = [
            threading.Thread(target=stream, args=(base, key, 30, short)),  # ~1.5 s
            threading.Thread(target=stream, args=(base, key, 400, long)),  # ~20 s
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while not ("first" in short and "first" in long):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        server = worker_process(base)
        server.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the signal handled (the grace period is 3 s)
        # A new call during the drain is refused, in DeepSeek's envelope, for its client to retry.
        refused = httpx.post(
            f"{base}/v1/chat/completions",
            json={"model": "deepseek-chat", "messages": [{"role": "user", "content": "Hi"}]},
            headers=bearer(key),
            timeout=10,
        )
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "server_shutting_down"
        for thread in threads:
            thread.join(30)
        server.wait(30)

    data, _ = sse_events(short["body"])
    assert data[-1] == "[DONE]"  # finished within the grace
    text = "".join(
        (json.loads(d)["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for d in data[:-1]
    )
    assert text == " ".join(["w"] * 30)

    data, _ = sse_events(long["body"])
    assert data[-1] != "[DONE]"
    assert json.loads(data[-1])["error"]["code"] == "server_shutting_down"
    records = UsageRecord.objects.filter(user=alice).order_by("pk")
    assert sorted(r.outcome for r in records) == ["cancelled", "complete"]  # nothing for the 503
    cut = records.get(outcome="cancelled")
    assert 0 < cut.completion_tokens < 400 and cut.state == UsageRecord.State.SETTLED
    assert not UsageRecord.objects.filter(state=UsageRecord.State.RESERVED).exists()
