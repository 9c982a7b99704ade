"""Behind the compose deployment's proxy (``deploy/nginx.conf``), the addresses the pages write
out for users to copy — a new share link, the API's base URL on the keys page — are the address
the user typed, port included. nginx passed the worker ``Host: $host``, the name without its
port, so with compose's default (the proxy on http://localhost:8080) a new share link read
http://localhost/s/… and the keys page said to point clients at http://localhost/v1: neither
reaches anything."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from conversations.models import Conversation, ModelConfig, User
from simulator.testing import running_simulator
from tests.servers import daphne_worker, nginx_proxy
from tests.support import PASSWORD, SIM_KEY


def signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=10)
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None, page.text[:500]
    answer = client.post(
        "/accounts/login/",
        data={"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": token.group(1)},
    )
    assert answer.status_code == 302, answer.text[:500]
    return client


def test_links_and_the_api_address_keep_the_proxys_port(
    alice: User, chat_model: ModelConfig, tmp_path: Path, transactional_db: None
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model, title="Notes")
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        daphne_worker(upstream, SIM_KEY, daphne_options=["--proxy-headers"]) as worker,
        nginx_proxy(worker, tmp_path) as base,
    ):
        # The origin users open is the proxy's, as PUBLIC_ORIGIN says under compose.
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base)
        client = signed_in(base)
        try:
            keys = client.get("/settings/api-keys/")
            assert keys.status_code == 200
            assert f"<code>{base}/v1</code>" in keys.text

            sharing = client.get(f"/c/{conversation.id}/sharing/")
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', sharing.text)
            form_id = re.search(r'name="form_id" value="([^"]+)"', sharing.text)
            assert csrf is not None and form_id is not None
            made = client.post(
                f"/c/{conversation.id}/sharing/links/",
                data={
                    "csrfmiddlewaretoken": csrf.group(1),
                    "form_id": form_id.group(1),
                    "expires_in_days": "",
                },
                follow_redirects=True,
            )
            assert made.status_code == 200, made.text[:500]
            link = re.search(r'id="new-link"[^>]*value="([^"]+)"', made.text)
            assert link is not None, made.text[:2000]
            assert link.group(1).startswith(f"{base}/s/"), link.group(1)
            assert client.get(link.group(1)).status_code == 200  # it opens
        finally:
            client.close()


def test_behind_tls_in_front_of_the_proxy_the_addresses_are_https(
    alice: User, tmp_path: Path, transactional_db: None
) -> None:
    """The README's shape: TLS ends in front of the proxy, which says so to nginx with
    X-Forwarded-Proto. nginx replaced it with its own scheme, http, so with DEBUG off (which
    trusts the header) the keys page said http://…/v1 and new share links began http://."""
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        daphne_worker(
            upstream,
            SIM_KEY,
            daphne_options=["--proxy-headers"],
            DEBUG="0",
            SECRET_KEY="behind-tls-" + "x" * 40,
        ) as worker,
        nginx_proxy(worker, tmp_path) as base,
    ):
        public = base.replace("http://", "https://")
        tls = {"X-Forwarded-Proto": "https"}  # what the TLS terminator in front adds
        with httpx.Client(base_url=base, timeout=10, headers=tls) as client:
            page = client.get("/accounts/login/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert token is not None, page.text[:500]
            csrf_cookie = page.cookies["csrftoken"]
            answer = client.post(
                "/accounts/login/",
                data={
                    "username": "alice",
                    "password": PASSWORD,
                    "csrfmiddlewaretoken": token.group(1),
                },
                # The browser's, over HTTPS (secure cookies are not sent back over plain http).
                headers={
                    "Referer": f"{public}/accounts/login/",
                    "Cookie": f"csrftoken={csrf_cookie}",
                },
            )
            assert answer.status_code == 302, answer.text[:500]
            session = answer.cookies["sessionid"]
            keys = client.get("/settings/api-keys/", headers={"Cookie": f"sessionid={session}"})
            assert keys.status_code == 200
            assert f"<code>{public}/v1</code>" in keys.text
