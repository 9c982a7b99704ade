from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import httpx

from simulator.testing import running_simulator

AUTH = {"Authorization": "Bearer sk-alice"}
BODY: dict[str, Any] = {
    "model": "deepseek-flash",
    "thinking": {"type": "disabled"},
    "messages": [{"role": "user", "content": "[[sim: say=done]]"}],
}


def timed_lines(url: str, body: dict[str, Any]) -> list[tuple[float, str]]:
    """Every line of the response with the seconds since the request started."""
    started = time.monotonic()
    lines: list[tuple[float, str]] = []
    with httpx.stream("POST", f"{url}/chat/completions", headers=AUTH, json=body) as response:
        assert response.status_code == 200
        buffer = ""
        for piece in response.iter_text():
            buffer += piece
            while "\n" in buffer:
                line, buffer = buffer.split("\n", 1)
                lines.append((time.monotonic() - started, line))
        if buffer:
            lines.append((time.monotonic() - started, buffer))
    return lines


def test_a_queued_stream_sends_keepalive_comments_at_the_interval() -> None:
    with running_simulator(queue_delay_s=0.9, keepalive_interval_s=0.2) as url:
        lines = timed_lines(url, {**BODY, "stream": True})
    keepalives = [t for t, line in lines if line == ": keep-alive"]
    first_data = next(t for t, line in lines if line.startswith("data: "))
    assert 3 <= len(keepalives) <= 5
    assert all(t < first_data for t in keepalives)
    gaps = [b - a for a, b in itertools.pairwise(keepalives)]
    assert all(0.1 < gap < 0.4 for gap in gaps)
    assert first_data >= 0.85
    assert lines[-2][1] == "data: [DONE]"


def test_a_queued_non_stream_sends_blank_lines_before_the_body() -> None:
    with running_simulator(queue_delay_s=0.7, keepalive_interval_s=0.2) as url:
        response = httpx.post(f"{url}/chat/completions", headers=AUTH, json=BODY)
    assert response.status_code == 200
    prefix = response.text[: len(response.text) - len(response.text.lstrip())]
    assert prefix == "\n" * 3
    assert response.json()["choices"][0]["message"]["content"] == "done"


def test_the_queue_timeout_closes_a_stream_without_done() -> None:
    with running_simulator(queue_delay_s=5, queue_timeout_s=0.5, keepalive_interval_s=0.2) as url:
        started = time.monotonic()
        lines = timed_lines(url, {**BODY, "stream": True})
        elapsed = time.monotonic() - started
    assert 0.45 <= elapsed < 2
    assert not any(line.startswith("data:") for _, line in lines)
    assert any(line == ": keep-alive" for _, line in lines)


def test_the_queue_timeout_closes_a_non_stream_with_only_whitespace() -> None:
    with running_simulator(queue_delay_s=5, queue_timeout_s=0.5, keepalive_interval_s=0.2) as url:
        response = httpx.post(f"{url}/chat/completions", headers=AUTH, json=BODY)
    assert response.status_code == 200
    assert response.text.strip() == ""


def test_requests_over_the_concurrency_limit_get_a_429() -> None:
    slow = {**BODY, "stream": True, "messages": [{"role": "user", "content": "[[sim: queue=1]]"}]}
    with running_simulator(max_concurrency=2) as url:
        results: list[int] = []

        def hold() -> None:
            results.append(
                httpx.post(f"{url}/chat/completions", headers=AUTH, json=slow).status_code
            )

        holders = [threading.Thread(target=hold) for _ in range(2)]
        for thread in holders:
            thread.start()
        time.sleep(0.3)
        rejected = httpx.post(f"{url}/chat/completions", headers=AUTH, json=BODY)
        for thread in holders:
            thread.join()
        after = httpx.post(f"{url}/chat/completions", headers=AUTH, json=BODY)
    assert rejected.status_code == 429
    assert "retry-after" not in rejected.headers
    assert rejected.json()["error"]["message"] == (
        "Your current concurrency is 3, which exceeds your concurrency limit of 2 based on your "
        "remaining balance. Please top up your balance to restore your concurrency."
    )
    assert results == [200, 200]
    assert after.status_code == 200
