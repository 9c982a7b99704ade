"""DeepSeek's own captured streams (``tests/fixtures/deepseek-captured``), replayed by an
upstream over real HTTP, come out of our API as DeepSeek sent them: every chunk's choices and
usage the same (only the id, time, model name and fingerprint are ours), ``data: [DONE]``
last; a non-streamed call assembles them into the completion DeepSeek would give, with its
usage as sent; and the ledger holds the provider's counts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.servers import daphne_worker
from tests.support import SIM_KEY
from tests.test_api_support import bearer, make_key, settled_record, sse_events
from tests.test_upstream_support import FIXTURES

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

#: The captures whose every chunk is whole (the other one's ids were sanitized away), and the
#: model of ours that asks for what each is an answer to.
CAPTURES = {
    "legacy-text": "deepseek-chat",
    "legacy-reasoning": "deepseek-reasoner",
    "legacy-tool-call": "deepseek-reasoner",
    "v4-flash-thinking-length": "deepseek-reasoner",
}
WEATHER = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    }
]


def _chunks(name: str) -> list[dict[str, Any]]:
    lines = (FIXTURES / f"{name}.chunks.txt").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


class _Replay(BaseHTTPRequestHandler):
    """DeepSeek, answering each call with the capture its last message names."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        name = body["messages"][-1]["content"]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for line in (FIXTURES / f"{name}.chunks.txt").read_text().splitlines():
            if line.strip():
                self.wfile.write(b"data: " + line.encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def replaying(django_db_setup: None) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Replay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with daphne_worker(f"http://127.0.0.1:{server.server_port}", SIM_KEY) as base:
            yield base
    finally:
        server.shutdown()
        server.server_close()


def _call(base: str, key: str, name: str, **body: Any) -> httpx.Response:
    payload = {
        "model": CAPTURES[name],
        "messages": [{"role": "user", "content": name}],
        **({"tools": WEATHER} if "tool" in name else {}),
        **body,
    }
    response = httpx.post(base + "/v1/chat/completions", headers=bearer(key), json=payload)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
def key(alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig) -> str:
    return make_key(alice)


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_a_captured_stream_comes_out_chunk_for_chunk(replaying: str, key: str, name: str) -> None:
    response = _call(replaying, key, name, stream=True, stream_options={"include_usage": True})
    data, _ = sse_events(response.text)
    assert data[-1] == "[DONE]"
    sent = [json.loads(payload) for payload in data[:-1]]
    captured = _chunks(name)
    assert [(c["choices"], c["usage"]) for c in sent] == [
        (c["choices"], c["usage"]) for c in captured
    ]
    assert {(c["id"], c["created"], c["model"]) for c in sent} == {
        (sent[0]["id"], sent[0]["created"], CAPTURES[name])
    }


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_a_captured_stream_asked_whole_is_deepseeks_completion_and_charged_its_usage(
    replaying: str, key: str, name: str
) -> None:
    captured = _chunks(name)
    usage = captured[-1]["usage"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in captured)
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in captured)

    body = _call(replaying, key, name).json()

    (choice,) = body["choices"]
    message = choice["message"]
    assert (message["content"], choice["finish_reason"], body["usage"]) == (
        text,
        captured[-1]["choices"][0]["finish_reason"],
        usage,
    )
    if CAPTURES[name] == "deepseek-reasoner":
        assert message["reasoning_content"] == reasoning
    else:
        assert "reasoning_content" not in message
    record = settled_record(purpose=UsageRecord.Purpose.API)
    assert (
        record.prompt_tokens,
        record.cache_hit_tokens,
        record.cache_miss_tokens,
        record.completion_tokens,
        record.reasoning_tokens,
        record.estimated,
    ) == (
        usage["prompt_tokens"],
        usage["prompt_cache_hit_tokens"],
        usage["prompt_cache_miss_tokens"],
        usage["completion_tokens"],
        (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0),
        False,
    )
