"""Twisted's HTTP factory formatted an access line for every request into Twisted's log, which
daphne prints nowhere: work for nothing on every request (chatsite/twisted_requests.py). It
writes none now; daphne's own access log is another thing, and is left as it is."""

from __future__ import annotations

from typing import Any

from daphne.http_protocol import HTTPFactory
from twisted.logger import globalLogPublisher
from twisted.web.http import Request
from twisted.web.test.requesthelper import DummyChannel

from chatsite import twisted_requests


def test_a_finished_request_puts_no_line_in_twisteds_log() -> None:
    twisted_requests.install()
    factory = HTTPFactory(server=None)
    factory.startFactory()
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        request = Request(DummyChannel())
        request.method, request.uri, request.clientproto = (
            b"POST",
            b"/v1/chat/completions",
            b"HTTP/1.1",
        )
        request.code = 200
        factory.log(request)
    finally:
        globalLogPublisher.removeObserver(events.append)
        factory.stopFactory()
    assert events == []
