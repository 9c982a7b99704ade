"""The compose deployment's proxy (``deploy/nginx.conf``) writes an access line per request:
with nginx's default format, the whole request line, so a share link's page named its token
(``/s/<token>/``) and a link's socket too (``?link=<token>``), for anyone reading the logs to
open the conversation. Its lines now name the path with ``<token>`` in its place, and no query
string, as the app's own log does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import websockets

from conversations import sharing
from conversations.models import Conversation, User
from simulator.testing import running_simulator
from tests.servers import daphne_worker, nginx_proxy, session_cookie
from tests.support import SIM_KEY


def test_a_link_s_page_and_socket_leave_no_token_in_the_access_log(
    alice: User, bob: User, alice_conversation: Conversation, tmp_path: Path, transactional_db: None
) -> None:
    _, token = sharing.create_share_link(alice, alice_conversation.id)
    cookie = {"Cookie": f"sessionid={session_cookie(bob)}"}
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        daphne_worker(upstream, SIM_KEY, daphne_options=["--proxy-headers"]) as worker,
        nginx_proxy(worker, tmp_path) as base,
    ):
        assert httpx.get(f"{base}/s/{token}/", headers=cookie).status_code == 200
        assert httpx.get(f"{base}/s/{token}/messages.json", headers=cookie).status_code == 200
        assert httpx.get(f"{base}/accounts/login/?next=/s/{token}/").status_code == 200

        async def watch() -> None:
            url = base.replace("http://", "ws://") + f"/ws/conversations/{alice_conversation.id}/"
            async with websockets.connect(
                f"{url}?link={token}",
                origin=worker,  # type: ignore[arg-type]
                additional_headers=cookie,
            ) as socket:
                assert '"ready"' in await socket.recv()

        asyncio.run(watch())
    written = (tmp_path / "access.log").read_text()
    assert '"GET /s/<token>/ HTTP/1.1" 200' in written, written
    assert '"GET /s/<token>/messages.json HTTP/1.1" 200' in written, written
    assert '"GET /accounts/login/ HTTP/1.1" 200' in written, written
    assert f'"GET /ws/conversations/{alice_conversation.id}/ HTTP/1.1" 101' in written, written
    assert token not in written
