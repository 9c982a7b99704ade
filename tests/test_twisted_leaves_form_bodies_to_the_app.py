"""Twisted no longer parses POST bodies as forms in daphne's workers: the app alone reads them
(chatsite/twisted_requests.py). A multipart body Twisted could not parse used to be answered by
Twisted itself with a bare 400 and a closed connection; the app now answers it."""

from __future__ import annotations

import httpx
import pytest

from simulator.testing import running_simulator
from tests.servers import daphne_worker
from tests.support import SIM_KEY

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_malformed_multipart_post_reaches_the_app() -> None:
    with running_simulator(api_key=SIM_KEY) as upstream, daphne_worker(upstream, SIM_KEY) as base:
        reply = httpx.post(
            f"{base}/accounts/login/",
            content=b"this is not a multipart body",
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
        )
        # The app's answer to a form post without a CSRF token (templates/403_csrf.html).
        assert reply.status_code == 403
        assert "The form expired" in reply.text

        # The API's JSON error for a body that is not JSON, not Twisted's bare page.
        reply = httpx.post(
            f"{base}/v1/chat/completions",
            content=b"a=1&b=2",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "Bearer sk-unknown",
            },
        )
        assert reply.status_code == 401
        assert reply.json()["error"]["type"] == "authentication_error"
