"""Shared pieces of the API tests (no tests of its own): a real server with the simulator as
its upstream, keys for the named actors, and SSE reading."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

import httpx

from conversations import api_keys, api_wire
from conversations.models import Conversation, ModelConfig, UsageRecord, User
from simulator.testing import running_simulator
from tests.servers import daphne_worker
from tests.support import SIM_KEY, eventually


@contextmanager
def api_server(
    *, worker_settings: Mapping[str, str] | None = None, **simulator_options: Any
) -> Iterator[str]:
    """A daphne worker serving the app against a simulator; yields the worker's base URL.
    ``worker_settings``: environment settings of the worker (``daphne_worker``'s overrides)."""
    options = {"api_key": SIM_KEY, "tokens_per_s": 0, "seed": 7, **simulator_options}
    with (
        running_simulator(**options) as upstream,
        daphne_worker(upstream, SIM_KEY, **(worker_settings or {})) as base,
    ):
        yield base


def make_key(
    user: User,
    *,
    name: str = "tests",
    expires_at: datetime | None = None,
    save_history: bool = False,
) -> str:
    return api_keys.create_key(
        user, name=name, expires_at=expires_at, save_history=save_history
    ).secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def chat(
    base: str,
    headers: dict[str, str],
    body: dict[str, Any] | None = None,
    *,
    path: str = "/v1/chat/completions",
    **extra: Any,
) -> httpx.Response:
    payload = {
        "model": "deepseek-chat",
        "messages": [{"role": "user", "content": "Hello"}],
        **(body or {}),
        **extra,
    }
    return httpx.post(base + path, headers=headers, json=payload, timeout=30)


def sse_events(body: str) -> tuple[list[str], list[str]]:
    """(data payloads, comment lines) of an SSE body, in order."""
    data: list[str] = []
    comments: list[str] = []
    for block in body.split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                data.append(line[6:])
            elif line.startswith(":"):
                comments.append(line)
    return data, comments


def chunks_of(body: str) -> list[dict[str, Any]]:
    data, _ = sse_events(body)
    return [json.loads(d) for d in data if d != "[DONE]"]


def assert_envelope(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == kind
    return dict(error)


def settled_record(**where: Any) -> UsageRecord:
    """The ledger row of the API call ``where`` names, once settled: a call is settled just
    after its answer's last byte has gone out."""
    return eventually(lambda: UsageRecord.objects.get(state=UsageRecord.State.SETTLED, **where))


def all_settled(**where: Any) -> None:
    """Wait until no API call ``where`` names is still reserved (see :func:`settled_record`)."""

    def none_reserved() -> None:
        assert not UsageRecord.objects.filter(state=UsageRecord.State.RESERVED, **where).exists(), (
            "a call still reserved"
        )

    eventually(none_reserved)


def calls_written_before_a_flush(within: float = 3) -> None:
    """Wait (at most ``within`` seconds) until the workers have written what they write for the
    API calls they have answered: each call's settlement, then, for a key that saves history,
    the call's copy as a conversation (its ledger row then links it). A test that leaves a call
    reserved on purpose, its worker killed, or a copy that cannot be stored pays that wait."""
    deadline = time.monotonic() + within
    api = UsageRecord.objects.filter(purpose=UsageRecord.Purpose.API)
    reserved = api.filter(state=UsageRecord.State.RESERVED)
    uncopied = api.filter(
        state=UsageRecord.State.SETTLED,
        outcome="complete",
        api_key__save_history=True,
        conversation__isnull=True,
    )
    while (reserved.exists() or uncopied.exists()) and time.monotonic() < deadline:
        time.sleep(0.02)


def saved_conversation(owner: User) -> Conversation:
    """The one conversation a call of a key that saves history recorded: saved, as the call
    is settled, just after its answer has gone out."""
    return eventually(lambda: Conversation.objects.get(owner=owner))


def saving_call(
    user: User,
    model: ModelConfig,
    messages: list[dict[str, Any]],
    params: dict[str, Any] | None = None,
) -> api_keys.Call:
    """An admitted call of ``user``'s with a "save to history" key, as ``api_calls`` hands it
    to ``api_keys.save_to_history`` (no ledger row: the copy links to none)."""
    return api_keys.Call(
        record_id=0,
        user_id=user.pk,
        key_id=0,
        model_id=model.pk,
        model_name=model.name,
        fingerprint="",
        target=cast(Any, None),  # not read by the copy
        request=api_wire.ChatRequest(
            model=model.name, messages=messages, params=dict(params or {}), max_tokens=4096
        ),
        save_history=True,
    )
