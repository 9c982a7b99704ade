"""A path with an encoded line break (``%0A``, decoded by the server) is logged on the request's
own line, its control characters escaped. Before, what followed the break was written as a line
of its own, in the log's own format: anyone, signed in or not, could add lines that read as if a
user had done something (an admin's password change, say)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from simulator.testing import running_simulator
from tests.servers import daphne_worker
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

FORGED = "2026-11-29 01:00:00,000 INFO chatsite.request req=forged user=1 POST /admin/ 302 1.0ms"


@pytest.mark.parametrize("prefix", ["/v1/x", "/nothing"], ids=["the API", "the site"])
def test_a_line_break_in_a_path_is_escaped_in_the_request_line(tmp_path: Path, prefix: str) -> None:
    log = tmp_path / "worker.log"
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        open(log, "w") as output,
        daphne_worker(upstream, SIM_KEY, output=output, LOG_LEVEL="INFO") as base,
    ):
        for brk in ("%0A", "%0D", "%E2%80%A8"):  # LF, CR, Unicode's line separator
            path = f"{prefix}{brk}{FORGED.replace(' ', '%20')}"
            assert httpx.get(base + path).status_code == 404
    lines = log.read_text().splitlines()
    assert not [line for line in lines if line.startswith(FORGED[:30])], lines[-6:]
    logged = [line for line in lines if f" GET {prefix}\\" in line]
    assert len(logged) == 3, lines[-6:]
    assert [line.split(f"GET {prefix}")[1][:7] for line in logged] == [
        "\\x0a202",
        "\\x0d202",
        "\\u20282",
    ]
    assert all(line.rstrip().endswith("ms") for line in logged)
