"""A visitor who is not signed in may make ANONYMOUS_LINK_REQUESTS_PER_MINUTE requests a minute
to share links from one address: a link's page, its messages.json and its socket's handshake
each count one, and so do tokens that lead nowhere. Past it: a 429 with Retry-After and one
plain line (no transcript, no token), or a socket told `rate_limited` and closed with 4429,
until the minute ends. Other addresses and signed-in accounts are not affected; the count is
in PostgreSQL, so every worker shares it. Before, anyone could read a transcript, or guess
tokens, as fast as the server answered."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from django.db import connection
from django.db.models import F

from conversations import sharing
from conversations.models import (
    Conversation,
    LinkRequests,
    Message,
    SharingSettings,
    User,
)
from simulator.testing import running_simulator
from tests.servers import daphne_worker, session_cookie
from tests.support import SIM_KEY

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
LIMIT = 4


@pytest.fixture
def workers(chat_model: Any, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """Two workers behind which X-Forwarded-For names the client (as the image runs daphne),
    and the file both write their lines to."""
    log = tmp_path / "workers.log"
    limit = {"ANONYMOUS_LINK_REQUESTS_PER_MINUTE": str(LIMIT)}
    proxied = ["--proxy-headers"]
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        log.open("w") as output,
        daphne_worker(upstream, SIM_KEY, output=output, daphne_options=proxied, **limit) as first,
        daphne_worker(upstream, SIM_KEY, output=output, daphne_options=proxied, **limit) as second,
    ):
        yield first, second, log


@pytest.fixture
def link(alice: User, alice_conversation: Conversation) -> str:
    SharingSettings.objects.update_or_create(pk=1, defaults={"allow_public_links": True})
    Message.objects.create(
        conversation=alice_conversation, role="user", author=alice, content="Where is the runbook?"
    )
    _, token = sharing.create_share_link(alice, alice_conversation.id)
    return token


def a_fresh_minute() -> None:
    """Counts restart as the clock's minute does: a test's requests all fall in one minute."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 60 - mod(extract(epoch FROM now()), 60)")
        left = float(cursor.fetchone()[0])
    if left < 20:
        time.sleep(left + 0.2)


def get(base: str, path: str, address: str, cookie: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": address}
    if cookie is not None:
        headers["Cookie"] = f"sessionid={cookie}"
    return httpx.get(f"{base}{path}", headers=headers, follow_redirects=False)


def assert_refused(response: httpx.Response, token: str) -> None:
    assert response.status_code == 429, response.text[:500]
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.text.startswith("Too many requests for shared conversations from your address")
    assert token not in response.text and "runbook" not in response.text


def test_an_address_past_its_requests_is_refused_until_the_minute_ends(
    alice: User, bob: User, workers: tuple[str, str, Path], link: str
) -> None:
    first, second, log = workers
    a_fresh_minute()
    # Under the limit, on either worker: the page, its messages, a page again.
    assert "runbook" in get(first, f"/s/{link}/", "203.0.113.1").text
    assert "runbook" in get(second, f"/s/{link}/messages.json", "203.0.113.1").text
    assert "runbook" in get(first, f"/s/{link}/", "203.0.113.1").text
    assert "runbook" in get(second, f"/s/{link}/", "203.0.113.1").text

    # One more, counted on the other worker too: refused, the page and its messages alike.
    assert_refused(get(first, f"/s/{link}/", "203.0.113.1"), link)
    assert_refused(get(second, f"/s/{link}/messages.json", "203.0.113.1"), link)

    # Another address, and a signed-in account from the same one, are not affected.
    assert get(first, f"/s/{link}/", "203.0.113.2").status_code == 200
    cookie = session_cookie(bob)
    for _ in range(LIMIT + 1):
        assert get(second, f"/s/{link}/", "203.0.113.1", cookie).status_code == 200

    # The minute over, the address may read again.
    LinkRequests.objects.update(window_start=F("window_start") - timedelta(minutes=1))
    assert "runbook" in get(first, f"/s/{link}/", "203.0.113.1").text

    # The operator is told which address, once, and never a token.
    written = log.read_text()
    assert written.count("share links: 203.0.113.1 made more than 4 requests this minute") == 1
    assert link not in written


def test_tokens_that_lead_nowhere_count_too(
    alice: User, alice_conversation: Conversation, workers: tuple[str, str, Path], link: str
) -> None:
    first, _, _ = workers
    revoked, revoked_token = sharing.create_share_link(alice, alice_conversation.id)
    sharing.revoke_share_link(alice, revoked.pk)
    a_fresh_minute()
    assert get(first, "/s/guessed-guessed-guessed-1/", "198.51.100.7").status_code == 404
    assert get(first, "/s/short/", "198.51.100.7").status_code == 404
    assert get(first, f"/s/{revoked_token}/", "198.51.100.7").status_code == 404
    assert (
        get(first, "/s/guessed-guessed-guessed-2/messages.json", "198.51.100.7").status_code == 404
    )

    assert_refused(get(first, f"/s/{link}/", "198.51.100.7"), link)
    assert_refused(get(first, "/s/guessed-guessed-guessed-3/", "198.51.100.7"), link)

    # With public links off, a link's page sends the visitor to sign in (telling a live token
    # from a dead one): counted the same.
    SharingSettings.objects.filter(pk=1).update(allow_public_links=False)
    for _ in range(LIMIT):
        assert get(first, f"/s/{link}/", "198.51.100.8").status_code == 302
    assert_refused(get(first, f"/s/{link}/", "198.51.100.8"), link)


async def handshake(
    base: str, conversation: Any, address: str, link: str, cookie: str | None = None
) -> dict[str, Any]:
    """The first frame of a link's socket from ``address``, and how it closed if it did."""
    url = base.replace("http://", "ws://") + f"/ws/conversations/{conversation}/?link={link}"
    headers = {"X-Forwarded-For": address}
    if cookie is not None:
        headers["Cookie"] = f"sessionid={cookie}"
    async with websockets.connect(
        url,
        origin=base,  # type: ignore[arg-type]
        additional_headers=headers,
    ) as socket:
        first = dict(json.loads(await asyncio.wait_for(socket.recv(), 10)))
        if first["type"] == "error":
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
            assert closed.value.rcvd is not None
            first["closed"] = closed.value.rcvd.code
        return first


def test_a_link_socket_past_the_limit_is_closed_with_4429(
    bob: User, alice_conversation: Conversation, workers: tuple[str, str, Path], link: str
) -> None:
    first, second, _ = workers
    a_fresh_minute()
    # The socket's handshakes count with the link's pages.
    assert get(first, f"/s/{link}/", "192.0.2.5").status_code == 200
    for base in (first, second, first):
        ready = asyncio.run(handshake(base, alice_conversation.id, "192.0.2.5", link))
        assert ready["type"] == "ready", ready

    refused = asyncio.run(handshake(second, alice_conversation.id, "192.0.2.5", link))
    assert refused.pop("closed") == 4429
    assert refused.pop("code") == "rate_limited"
    assert 1 <= refused.pop("retry_after") <= 60
    assert refused.pop("message").startswith("Too many requests for shared conversations")
    assert refused == {"type": "error"}
    # A token that leads nowhere is refused the same, before it is looked up.
    refused = asyncio.run(handshake(first, alice_conversation.id, "192.0.2.5", "guessed" * 4))
    assert refused["closed"] == 4429

    # Another address, and a signed-in account from this one, connect.
    ready = asyncio.run(handshake(first, alice_conversation.id, "192.0.2.6", link))
    assert ready["type"] == "ready", ready
    cookie = session_cookie(bob)
    ready = asyncio.run(handshake(second, alice_conversation.id, "192.0.2.5", link, cookie))
    assert ready["type"] == "ready", ready
