"""A share link's token never reaches the request log: the line names the path with
``<token>`` in its place (it logged the token in full, so anyone reading the logs could open a
conversation whose link is stored only hashed)."""

from __future__ import annotations

from typing import Any

import pytest

from conversations import sharing
from conversations.models import Conversation, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_the_request_log_line_leaves_the_token_out(
    alice: User, bob: User, alice_conversation: Conversation, caplog: Any
) -> None:
    link, token = sharing.create_share_link(alice, alice_conversation.id)
    client = client_for(bob)
    caplog.set_level("INFO", logger="chatsite.request")
    assert client.get(f"/s/{token}/").status_code == 200
    sharing.revoke_share_link(alice, link.pk)
    assert client.get(f"/s/{token}/").status_code == 404

    lines = [r.getMessage() for r in caplog.records if r.name == "chatsite.request"]
    assert lines[0].startswith("GET /s/<token>/ 200 "), lines
    assert lines[1].startswith("GET /s/<token>/ 404 "), lines
    assert not any(token in record.getMessage() for record in caplog.records)


def test_a_served_worker_writes_no_token_anywhere(
    alice: User, bob: User, alice_conversation: Conversation, tmp_path: Any, transactional_db: None
) -> None:
    """What a worker writes (its access lines included) as `make run` and the image run it: a
    link's page and its read-only socket (``?link=<token>``) leave the token out."""
    import asyncio

    import httpx
    import websockets

    from simulator.testing import running_simulator
    from tests.servers import daphne_worker, session_cookie
    from tests.support import SIM_KEY

    _, token = sharing.create_share_link(alice, alice_conversation.id)
    cookie = {"Cookie": f"sessionid={session_cookie(bob)}"}
    log = tmp_path / "worker.log"
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        open(log, "w") as output,
        daphne_worker(upstream, SIM_KEY, output=output, LOG_LEVEL="INFO") as base,
    ):
        assert httpx.get(f"{base}/s/{token}/", headers=cookie).status_code == 200

        async def watch() -> None:
            url = base.replace("http://", "ws://") + f"/ws/conversations/{alice_conversation.id}/"
            async with websockets.connect(
                f"{url}?link={token}",
                origin=base,  # type: ignore[arg-type]
                additional_headers=cookie,
            ) as socket:
                assert '"ready"' in await socket.recv()

        asyncio.run(watch())
    written = log.read_text()
    assert "GET /s/<token>/ 200" in written, written[-2000:]
    assert f"/ws/conversations/{alice_conversation.id}/" in written  # the socket is logged
    assert token not in written


@pytest.mark.parametrize(
    "tail", ["", "/x", "/messages.json/"], ids=["no final slash", "a tail", "a slash too many"]
)
def test_a_link_path_no_route_takes_leaves_the_token_out(
    alice: User, bob: User, alice_conversation: Conversation, caplog: Any, tail: str
) -> None:
    """A link pasted without its final slash (Django redirects it) or with something after it
    resolves to no route: its line was written with the path as it came, token and all."""
    _, token = sharing.create_share_link(alice, alice_conversation.id)
    caplog.set_level("INFO", logger="chatsite.request")
    assert client_for(bob).get(f"/s/{token}{tail}").status_code in (301, 404)

    lines = [r.getMessage() for r in caplog.records if r.name == "chatsite.request"]
    assert lines and lines[0].startswith(f"GET /s/<token>{tail} "), lines
    assert not any(token in record.getMessage() for record in caplog.records)


def test_django_s_own_lines_about_a_link_leave_the_token_out(
    alice: User, alice_conversation: Conversation, tmp_path: Any, transactional_db: None
) -> None:
    """Django writes lines of its own naming the path: a request its CSRF check refuses
    ("Forbidden (CSRF cookie not set.): /s/…/", a warning anyone holding a link can cause),
    an internal error ("Internal Server Error: /s/…/messages.json"). They named the token."""
    import httpx

    from simulator.testing import running_simulator
    from tests.servers import daphne_worker
    from tests.support import SIM_KEY

    _, token = sharing.create_share_link(alice, alice_conversation.id)
    log = tmp_path / "worker.log"
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        open(log, "w") as output,
        daphne_worker(upstream, SIM_KEY, output=output, LOG_LEVEL="INFO") as base,
    ):
        assert httpx.post(f"{base}/s/{token}/", data={"x": "1"}).status_code == 403
        assert httpx.post(f"{base}/s/{token}/messages.json").status_code == 403
    written = log.read_text()
    assert "Forbidden (CSRF cookie not set.): /s/<token>/" in written, written[-2000:]
    assert "Forbidden (CSRF cookie not set.): /s/<token>/messages.json" in written
    assert token not in written
