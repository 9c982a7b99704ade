from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.testing import running_simulator, sse_chunks

AUTH = {"Authorization": "Bearer sk-alice"}
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deepseek-captured"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with running_simulator() as base:
        yield base


def post(url: str, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{url}/chat/completions", headers=AUTH, json={"model": "deepseek-flash", **body}
    )


def test_json_mode_returns_a_json_object(url: str) -> None:
    body = post(
        url,
        messages=[{"role": "user", "content": "Summarise our on-call policy as json"}],
        response_format={"type": "json_object"},
    ).json()
    parsed = json.loads(body["choices"][0]["message"]["content"])
    assert isinstance(parsed, dict)
    assert parsed["points"] and isinstance(parsed["points"], list)


def test_json_blank_directive_gives_the_all_whitespace_failure_case(url: str) -> None:
    body = post(
        url,
        messages=[{"role": "user", "content": "json please [[sim: json=blank]]"}],
        response_format={"type": "json_object"},
    ).json()
    content = body["choices"][0]["message"]["content"]
    assert content and content.strip() == ""
    assert body["choices"][0]["finish_reason"] == "stop"


def test_logprobs_match_the_captured_v4_shape(url: str) -> None:
    fixture = json.loads((FIXTURES / "v4-flash-logprobs.json").read_text())
    fixture_entry = fixture["choices"][0]["logprobs"]["content"][0]
    body = post(
        url,
        thinking={"type": "disabled"},
        messages=[{"role": "user", "content": "Reply OK"}],
        logprobs=True,
        top_logprobs=3,
    ).json()
    logprobs = body["choices"][0]["logprobs"]
    assert list(logprobs) == ["content"]
    entries = logprobs["content"]
    assert "".join(e["token"] for e in entries) == body["choices"][0]["message"]["content"]
    assert len(entries) == body["usage"]["completion_tokens"]
    for entry in entries:
        assert list(entry) == list(fixture_entry)
        assert entry["logprob"] <= 0
        assert entry["bytes"] == list(entry["token"].encode())
        assert len(entry["top_logprobs"]) == 3
        assert entry["top_logprobs"][0] == {
            "token": entry["token"],
            "logprob": entry["logprob"],
            "bytes": entry["bytes"],
        }
        assert list(entry["top_logprobs"][1]) == list(fixture_entry["top_logprobs"][0])
        assert entry["top_logprobs"][1]["logprob"] < entry["logprob"]


def test_streamed_logprobs_ride_on_their_content_chunks(url: str) -> None:
    chunks = sse_chunks(
        post(
            url,
            stream=True,
            thinking={"type": "disabled"},
            messages=[{"role": "user", "content": "Reply OK"}],
            logprobs=True,
            top_logprobs=1,
        ).text
    )
    for chunk in chunks[1:-1]:
        choice = chunk["choices"][0]
        tokens = "".join(e["token"] for e in choice["logprobs"]["content"])
        assert tokens == choice["delta"]["content"]
    assert chunks[0]["choices"][0]["logprobs"] is None


def test_thinking_logprobs_also_cover_the_reasoning(url: str) -> None:
    body = post(url, messages=[{"role": "user", "content": "hi"}], logprobs=True).json()
    logprobs = body["choices"][0]["logprobs"]
    reasoning = "".join(e["token"] for e in logprobs["reasoning_content"])
    assert reasoning == body["choices"][0]["message"]["reasoning_content"]
    assert all(e["top_logprobs"] == [] for e in logprobs["content"])
