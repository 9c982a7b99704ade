"""A page or a JSON read that cannot reach the database is answered 503 with ``Retry-After``
(a JSON error ``database_unavailable`` where JSON was asked for), not a 500 and a traceback:
the database out of reach for a moment is no bug of the site's, and asked again the request
works. Pages that need no database are served as ever."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.servers import daphne_worker, free_port
from tests.support import SIM_KEY

pytestmark = pytest.mark.timeout(120)


def test_a_worker_without_its_database_answers_pages_and_json_503(tmp_path: Path) -> None:
    dead_database = f"postgres://nobody@127.0.0.1:{free_port()}/nothing"
    log = tmp_path / "worker.log"
    with (
        log.open("wb") as output,
        daphne_worker(
            "http://127.0.0.1:9",
            SIM_KEY,
            ready_path="/healthz",
            DATABASE_URL=dead_database,
            output=output,
        ) as base,
    ):
        token = "abcdefabcdefabcdef"
        page = httpx.get(f"{base}/s/{token}/", timeout=30)
        assert page.status_code == 503, page.text
        assert page.headers["Retry-After"] == "5"
        assert page.headers["Content-Type"].startswith("text/html")
        assert "Back in a moment" in page.text and "Traceback" not in page.text
        assert token not in page.text

        read = httpx.get(f"{base}/s/{token}/messages.json", timeout=30)
        assert read.status_code == 503, read.text
        assert read.headers["Retry-After"] == "5"
        assert read.json() == {
            "error": {
                "code": "database_unavailable",
                "message": "The service is temporarily unavailable; try again in a moment.",
                "retry_after": 5,
            }
        }

        # A page that needs no database is served as ever.
        assert httpx.get(f"{base}/accounts/login/", timeout=30).status_code == 200
    logged = log.read_text()
    assert "answered 503: the database could not be reached" in logged
    assert "Traceback" not in logged and token not in logged
