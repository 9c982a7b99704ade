"""Behind the compose deployment's proxy, sign-in throttling counts the address the connection
came from. nginx passed on whatever X-Forwarded-For the client sent with the real address
appended (``$proxy_add_x_forwarded_for``), and daphne (``--proxy-headers``, as the image runs
it) takes the first address of the list: the client's own claim. A guesser sending a new
X-Forwarded-For with every try was a new address each time, and never throttled."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from conversations import signin
from conversations.models import User
from simulator.testing import running_simulator
from tests.servers import ROOT, daphne_worker, nginx_proxy
from tests.support import PASSWORD, SIM_KEY


def sign_in(base: str, password: str, forwarded_for: str) -> str:
    with httpx.Client(base_url=base, headers={"X-Forwarded-For": forwarded_for}) as client:
        page = client.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None, page.text[:500]
        answer = client.post(
            "/accounts/login/",
            data={
                "username": "alice",
                "password": password,
                "csrfmiddlewaretoken": token.group(1),
            },
        )
    return "signed in" if answer.status_code == 302 else answer.text


def test_a_forged_forwarded_for_is_not_a_new_address(
    alice: User, tmp_path: Path, transactional_db: None
) -> None:
    assert "--proxy-headers" in (ROOT / "Dockerfile").read_text()  # how the image runs daphne
    with (
        running_simulator(api_key=SIM_KEY) as upstream,
        daphne_worker(upstream, SIM_KEY, daphne_options=["--proxy-headers"]) as worker,
        nginx_proxy(worker, tmp_path) as base,
    ):
        for n in range(signin.PER_ACCOUNT):
            page = sign_in(base, "wrong", forwarded_for=f"198.51.100.{n}")
            assert "Please enter a correct username and password" in page
        page = sign_in(base, PASSWORD, forwarded_for="198.51.100.200")
        assert "Too many failed sign-ins" in page
