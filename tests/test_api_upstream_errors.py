"""Upstream failures reach API callers in DeepSeek's envelope with a fitting status, never with
upstream detail or our upstream key; a stream that breaks ends without ``[DONE]``; every call is
settled whatever happened."""

from __future__ import annotations

import json

import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.support import SIM_KEY
from tests.test_api_support import assert_envelope, bearer, chat, make_key, sse_events

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


def _ask(content: str, **body: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": content}], **body}


@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [
        ("429", 429, "rate_limit_error"),
        ("503", 503, "api_error"),
        ("500", 502, "api_error"),
        ("401", 502, "api_error"),
        ("402", 502, "api_error"),
    ],
)
def test_an_upstream_refusal_maps_to_a_status_and_a_safe_message(
    base: str, headers: dict[str, str], alice: User, fault: str, status: int, kind: str
) -> None:
    for stream in (False, True):
        response = chat(base, headers, _ask(f"[[sim: fault={fault}]]", stream=stream))
        error = assert_envelope(response, status, kind)
        assert SIM_KEY not in response.text and SIM_KEY[-4:] not in response.text
        assert "Your current concurrency" not in error["message"]  # upstream wording stays home
    records = UsageRecord.objects.filter(user=alice)
    assert records.count() == 2
    assert {(r.state, r.outcome, r.reserved_tokens) for r in records} == {("settled", "failed", 0)}
    assert {r.total_tokens for r in records} == {0}  # refused upstream: nothing was billed


def test_an_upstream_400_explains_itself(base: str, headers: dict[str, str]) -> None:
    error = assert_envelope(
        chat(base, headers, _ask("[[sim: fault=400]]")), 400, "invalid_request_error"
    )
    assert error["message"].startswith("This model's maximum context length is")


def test_a_stream_cut_upstream_ends_with_an_error_event_and_no_done(
    base: str, headers: dict[str, str], alice: User
) -> None:
    words = " ".join(f"w{i}" for i in range(60))
    response = chat(base, headers, _ask(f"[[sim: drop_after=6]][[sim: say={words}]]", stream=True))
    assert response.status_code == 200
    data, _ = sse_events(response.text)
    assert "[DONE]" not in data
    error = json.loads(data[-1])["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "response_truncated"
    received = "".join(json.loads(d)["choices"][0]["delta"].get("content") or "" for d in data[:-1])
    assert received and words.startswith(received)
    record = UsageRecord.objects.get(user=alice)
    assert record.state == "settled" and record.outcome == "interrupted"
    assert record.estimated and record.completion_tokens > 0 and record.reserved_tokens == 0
