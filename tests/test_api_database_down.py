"""When the database cannot be reached, the API answers at once-ish with a 503 in DeepSeek's
envelope (its pool gives up after a few seconds); it never hangs."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.servers import daphne_worker, free_port
from tests.support import SIM_KEY

pytestmark = pytest.mark.timeout(90)


def test_a_worker_without_its_database_answers_503_in_the_envelope_not_a_hang() -> None:
    dead_database = f"postgres://nobody@127.0.0.1:{free_port()}/nothing"
    with daphne_worker(
        "http://127.0.0.1:9",
        SIM_KEY,
        ready_path="/healthz",
        DATABASE_URL=dead_database,
        LOG_LEVEL="CRITICAL",
    ) as base:
        key = "sk-team-" + "A" * 40
        for method, path in (
            ("POST", "/v1/chat/completions"),
            ("GET", "/v1/models"),
            ("GET", "/user/balance"),
        ):
            started = time.monotonic()
            response = httpx.request(
                method,
                base + path,
                headers={"Authorization": f"Bearer {key}"},
                json={"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]},
                timeout=30,
            )
            assert time.monotonic() - started < 15
            assert response.status_code == 503, response.text
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["code"] == "database_unavailable" and error["type"] == "api_error"
            assert key not in response.text and "nobody" not in response.text
        # A request that needs no database is still answered by its own rules.
        assert httpx.get(base + "/v1/models", timeout=10).status_code == 401
