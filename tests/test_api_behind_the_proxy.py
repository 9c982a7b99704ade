"""The API behind the compose deployment's nginx (``deploy/nginx.conf``): streams reach the
client event by event, uncompressed; connections are kept alive; a body past the API's 2 MB
is refused as the worker refuses it (413 in the API's envelope), and a call nginx cannot hand
to a worker is a 503 in the envelope. nginx let API bodies up to its site-wide 5 MB through to
the worker, and answered larger ones, and a missing worker, with its own HTML page."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from conversations.api_asgi import MAX_BODY_BYTES
from conversations.models import ModelConfig, UsageAccount, UsageRecord, User
from tests.servers import free_port, nginx_proxy
from tests.test_api_support import api_server, assert_envelope, bearer, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def proxy(django_db_setup: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # 20 tokens a second: a 20-word answer streams for about a second.
    directory = tmp_path_factory.mktemp("nginx")
    with api_server(tokens_per_s=20) as worker, nginx_proxy(worker, directory) as url:
        yield url


@pytest.fixture
def headers(alice: User, chat_model: ModelConfig) -> dict[str, str]:
    return bearer(make_key(alice))


def body_of(size: int) -> bytes:
    """A chat body of exactly ``size`` bytes."""
    start = b'{"model": "deepseek-chat", "messages": [{"role": "user", "content": "'
    end = b' [[sim: say=ok]]"}]}'
    return start + b"a" * (size - len(start) - len(end)) + end


def test_a_stream_arrives_event_by_event(proxy: str, headers: dict[str, str]) -> None:
    words = " ".join(f"w{i}" for i in range(20))
    payload = {
        "model": "deepseek-chat",
        "stream": True,
        "messages": [{"role": "user", "content": f"[[sim: say={words}]]"}],
    }
    arrivals: list[float] = []
    with httpx.stream(
        "POST",
        proxy + "/v1/chat/completions",
        headers={**headers, "Accept-Encoding": "gzip"},
        json=payload,
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert "content-encoding" not in response.headers
        for line in response.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic())
    assert len(arrivals) > 10
    # Not held back and sent at the end: the events came over the second the answer took.
    assert arrivals[-1] - arrivals[1] > 0.5


def read_answer(connection: socket.socket) -> tuple[bytes, bytes]:
    """(head, body) of one answer with a Content-Length, read off ``connection``."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: (\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += connection.recv(65536)
    return head, body


def test_a_connection_is_kept_for_the_next_call(proxy: str, headers: dict[str, str]) -> None:
    parts = urlsplit(proxy)
    key = headers["Authorization"]
    body = body_of(200)
    calls = [
        f"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {key}\r\n\r\n".encode(),
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body,
    ]
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        for call in calls:
            connection.sendall(call)
            head, answer = read_answer(connection)
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"connection: close" not in head.lower()
            assert json.loads(answer)["object"] in ("list", "chat.completion")


def test_a_body_at_the_apis_limit_reaches_the_api(proxy: str, headers: dict[str, str]) -> None:
    response = httpx.post(
        proxy + "/v1/chat/completions", headers=headers, content=body_of(MAX_BODY_BYTES)
    )
    # The API read it (it is too long for the model's context, as the API says).
    assert response.status_code != 413, response.text[:300]
    assert response.headers["content-type"] == "application/json"


@pytest.mark.parametrize("size", [MAX_BODY_BYTES + 1, 6 * 1024 * 1024])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/chat/completions"])
def test_a_body_past_the_apis_limit_is_a_413_in_the_envelope(
    proxy: str, headers: dict[str, str], size: int, path: str
) -> None:
    response = httpx.post(proxy + path, headers=headers, content=body_of(size))
    error = assert_envelope(response, 413, "invalid_request_error")
    assert "2 MB" in error["message"]
    assert response.headers["access-control-allow-origin"] == "*"


def test_the_sites_pages_keep_their_own_limit(proxy: str) -> None:
    # A conversation import may be 5 MB: not refused by the proxy at the API's 2 MB.
    response = httpx.post(proxy + "/accounts/login/", content=b"a" * (3 * 1024 * 1024))
    assert response.status_code == 403  # Django's CSRF refusal: it reached the site


def test_no_worker_is_a_503_in_the_envelope(tmp_path: Path) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    with nginx_proxy(gone, tmp_path) as proxy:
        response = httpx.post(proxy + "/v1/chat/completions", content=json.dumps({}))
        error = assert_envelope(response, 503, "api_error")
        assert error["code"] == "service_unavailable"
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.headers["retry-after"] == "5" and response.headers["x-request-id"]
        # One model's path too (GET /models/{id}), as the API's paths are kept in step.
        for path in ("/models/deepseek-chat", "/v1/models/deepseek-chat"):
            assert_envelope(httpx.get(proxy + path), 503, "api_error")
        # The site's pages keep nginx's own page.
        assert httpx.get(proxy + "/").status_code == 502


def test_a_client_that_hangs_up_on_a_pending_answer_frees_its_reservation(
    proxy: str, headers: dict[str, str], alice: User
) -> None:
    # nginx closes its connection to the worker when the client leaves: the call is cancelled.
    content = "[[sim: first_token_latency=3]] [[sim: say=late]]"
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            proxy + "/v1/chat/completions",
            headers=headers,
            json={"model": "deepseek-chat", "messages": [{"role": "user", "content": content}]},
            timeout=httpx.Timeout(5, read=1),
        )
    deadline = time.monotonic() + 15
    while (record := UsageRecord.objects.get(user=alice)).state != UsageRecord.State.SETTLED:
        assert time.monotonic() < deadline, "the call was never settled"
        time.sleep(0.1)
    assert record.outcome == "cancelled" and record.reserved_tokens == 0
    assert UsageAccount.objects.get(user=alice).streams == 0
