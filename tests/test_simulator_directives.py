from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from simulator import count_tokens
from simulator.testing import running_simulator, sse_chunks, sse_data

AUTH = {"Authorization": "Bearer sk-alice1234"}


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_simulator() as base:
        yield base


def post(
    url: str, text: str, *, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    payload = {
        "model": "deepseek-flash",
        "thinking": {"type": "disabled"},
        "messages": [{"role": "user", "content": text}],
        **body,
    }
    return httpx.post(
        f"{url}/chat/completions", headers={**AUTH, **(headers or {})}, json=payload, timeout=10
    )


def content_of(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


def test_say_replies_with_exactly_the_text_including_escapes(url: str) -> None:
    response = post(url, r"Greet me [[sim: say=Hi **there**\n\tx \\ [a\] done]]")
    assert content_of(response) == "Hi **there**\n\tx \\ [a] done"


def test_directives_are_invisible_to_token_counting(url: str) -> None:
    plain = post(url, "What is the capital of France?").json()
    marked = post(url, "What is the capital of France? [[sim: say=Paris]]").json()
    assert plain["usage"]["prompt_tokens"] == marked["usage"]["prompt_tokens"]
    assert marked["usage"]["prompt_tokens"] == count_tokens("What is the capital of France?")
    assert marked["usage"]["completion_tokens"] == 2  # "Pari" + "s"


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (401, "authentication_error", "Authentication Fails, Your api key: ****1234 is invalid"),
        (402, "unknown_error", "Insufficient Balance"),
        (500, "internal_error", "Internal Server Error"),
    ],
)
def test_fault_answers_with_the_status_and_body(
    url: str, status: int, kind: str, message: str
) -> None:
    response = post(url, f"hello [[sim: fault={status}]]")
    assert response.status_code == status
    assert response.json() == {
        "error": {"message": message, "type": kind, "param": None, "code": "invalid_request_error"}
    }


def test_fault_422_is_a_deserialization_error(url: str) -> None:
    response = post(url, "[[sim: fault=422]]")
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("Failed to deserialize the JSON body")


def test_fault_503_and_400_context_length(url: str) -> None:
    assert post(url, "[[sim: fault=503]]").status_code == 503
    response = post(url, "[[sim: fault=400]]")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("This model's maximum context length is")


def test_fault_429_sends_retry_after_only_when_asked(url: str) -> None:
    bare = post(url, "[[sim: fault=429]]")
    assert bare.status_code == 429
    assert "retry-after" not in bare.headers
    assert "concurrency" in bare.json()["error"]["message"]
    told = post(url, "[[sim: fault=429 retry_after=1]]")
    assert told.status_code == 429
    assert told.headers["retry-after"] == "1"


def test_fault_times_fails_the_first_n_requests_then_succeeds(url: str) -> None:
    text = "retry me [[sim: fault=503 fault_times=2]]"
    statuses = [post(url, text).status_code for _ in range(4)]
    assert statuses == [503, 503, 200, 200]
    # Another key with the same marker has its own count.
    other = post(url, text, headers={"Authorization": "Bearer sk-bob"})
    assert other.status_code == 503


def test_the_header_form_works_and_combines_with_message_directives(url: str) -> None:
    response = post(url, "hi [[sim: say=from message]]", headers={"X-Simulator": "fault=503"})
    assert response.status_code == 503
    response = post(url, "hi", headers={"X-Simulator": "finish=content_filter; say=from header"})
    assert content_of(response) == "from header"
    assert response.json()["choices"][0]["finish_reason"] == "content_filter"


def test_several_blocks_combine(url: str) -> None:
    response = post(url, "[[sim: finish=length]] question [[sim: say=cut short]]")
    assert content_of(response) == "cut short"
    assert response.json()["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("reason", ["length", "content_filter", "insufficient_system_resource"])
def test_finish_forces_the_finish_reason_and_cuts_the_answer(url: str, reason: str) -> None:
    full = post(url, "Tell me about queues").json()
    forced = post(url, f"Tell me about queues [[sim: finish={reason}]]").json()
    assert forced["choices"][0]["finish_reason"] == reason
    full_text = full["choices"][0]["message"]["content"]
    forced_text = forced["choices"][0]["message"]["content"]
    assert full_text.startswith(forced_text)
    assert 0 < len(forced_text) < len(full_text)


def test_finish_applies_to_streams_too(url: str) -> None:
    chunks = sse_chunks(
        post(url, "[[sim: finish=insufficient_system_resource say=partial]]", stream=True).text
    )
    assert chunks[-1]["choices"][0]["finish_reason"] == "insufficient_system_resource"
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "partial"


def test_say_takes_the_rest_of_its_block(url: str) -> None:
    response = post(url, "[[sim: say=a finish=length]]")
    assert content_of(response) == "a finish=length"
    assert response.json()["choices"][0]["finish_reason"] == "stop"


def test_drop_after_closes_the_stream_after_n_chunks_without_done(url: str) -> None:
    text = post(url, "Tell me a story [[sim: drop_after=3]]", stream=True).text
    payloads = sse_data(text)
    assert len(payloads) == 3
    assert "[DONE]" not in payloads
    assert all(p.startswith("{") for p in payloads)


def test_drop_after_in_a_non_stream_truncates_the_body(url: str) -> None:
    response = post(url, "[[sim: drop_after=0]]")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_stall_after_keeps_the_stream_open_and_silent(url: str) -> None:
    received: list[str] = []
    with (
        pytest.raises(httpx.ReadTimeout),
        httpx.stream(
            "POST",
            f"{url}/chat/completions",
            headers=AUTH,
            json={
                "model": "deepseek-flash",
                "stream": True,
                "messages": [{"role": "user", "content": "[[sim: stall_after=2]]"}],
            },
            timeout=httpx.Timeout(5, read=0.7),
        ) as response,
    ):
        for line in response.iter_lines():
            if line:
                received.append(line)
    assert len(received) == 2


def test_stall_with_keepalive_sends_only_comments() -> None:
    with running_simulator(keepalive_interval_s=0.1) as base:
        received: list[str] = []
        started = time.monotonic()
        with httpx.stream(
            "POST",
            f"{base}/chat/completions",
            headers=AUTH,
            json={
                "model": "deepseek-flash",
                "stream": True,
                "messages": [{"role": "user", "content": "[[sim: stall_after=1 keepalive=1]]"}],
            },
            timeout=5,
        ) as response:
            for line in response.iter_lines():
                if line:
                    received.append(line)
                if time.monotonic() - started > 0.65:
                    break
    assert received[0].startswith("data: ")
    assert received[1:] and set(received[1:]) == {": keep-alive"}
    assert len(received[1:]) >= 4


def test_queue_directive_delays_with_keepalives(url: str) -> None:
    started = time.monotonic()
    text = post(url, "[[sim: queue=0.5 say=ok]]", stream=True).text
    assert time.monotonic() - started >= 0.5
    assert sse_data(text)[-1] == "[DONE]"


def test_tokens_per_s_paces_the_stream(url: str) -> None:
    started = time.monotonic()
    text = post(
        url, "[[sim: tokens_per_s=40 say=one two three four five six seven]]", stream=True
    ).text
    elapsed = time.monotonic() - started
    tokens = sse_chunks(text)[-1]["usage"]["completion_tokens"]
    assert tokens == 9  # one| two| thre|e| four| five| six| seve|n
    assert tokens / 40 - 0.05 <= elapsed < tokens / 40 + 1.0


def test_an_unknown_directive_is_a_400_naming_it(url: str) -> None:
    response = post(url, "[[sim: explode=1]]")
    assert response.status_code == 400
    assert "explode" in response.json()["error"]["message"]


def test_tool_directive_forces_a_named_call(url: str) -> None:
    tool = {"type": "function", "function": {"name": "ping", "parameters": {"type": "object"}}}
    response = post(url, "anything [[sim: tool=ping]]", tools=[tool])
    call = response.json()["choices"][0]["message"]["tool_calls"][0]
    assert call["function"] == {"name": "ping", "arguments": "{}"}


def test_usage_directive_moves_usage_to_a_trailing_chunk(url: str) -> None:
    chunks = sse_chunks(
        post(
            url,
            "[[sim: usage=trailing say=hi]]",
            stream=True,
            stream_options={"include_usage": True},
        ).text
    )
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 1


@pytest.mark.parametrize(("value", "sent"), [("none", None), ("empty", {"content": []})])
def test_logprobs_directive_withholds_the_logprobs_asked_for(
    url: str, value: str, sent: dict[str, Any] | None
) -> None:
    """A provider that ignores `logprobs` (or sends empty lists): asked for, never given."""
    text = f"[[sim: logprobs={value} say=one two three four five six]]"
    chunks = sse_chunks(post(url, text, stream=True, logprobs=True).text)
    with_text = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(with_text) > 1
    assert all(c["choices"][0]["logprobs"] == sent for c in with_text)
    body = post(url, text, logprobs=True).json()
    assert body["choices"][0]["logprobs"] == sent
    assert post(url, "[[sim: logprobs=some]]").status_code == 400


def test_directives_only_count_in_the_last_user_message(url: str) -> None:
    payload = {
        "model": "deepseek-flash",
        "thinking": {"type": "disabled"},
        "messages": [
            {"role": "user", "content": "[[sim: fault=500]]"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "[[sim: say=fine]]"},
        ],
    }
    response = httpx.post(f"{url}/chat/completions", headers=AUTH, json=payload)
    assert response.status_code == 200
    assert content_of(response) == "fine"
