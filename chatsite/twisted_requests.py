"""daphne's requests are not parsed as form submissions by Twisted.

Twisted's ``Request`` parses every POST body that says it is a form (URL-encoded or
``multipart/form-data``) into ``request.args``, and for that parses every POST's
``Content-Type`` header with the standard library's e-mail header machinery. daphne never reads
``request.args``: it hands the body to the app as it came, and Django parses forms itself. So
the work was wasted on every POST (the header parse alone was ~6% of a worker's CPU under API
load: bench/RESULTS.md, "Eighth session"), a form body was held twice in memory, and a
multipart body Twisted could not parse was answered by Twisted with a bare 400 and a closed
connection, never reaching the app.

:func:`install` has daphne create its requests with Twisted's own switch for this,
``parsePOSTFormSubmission=False``. Installed once, by ``chatsite/asgi.py``.

It also bounds what a request may send. Twisted reads a whole body before daphne hands the
request to the app, spooling any over 100 kB to a temporary file, with no limit: anyone, signed
in or not, could fill the worker's disk with one POST (behind the compose proxy nginx cuts bodies
at 5 MB; a worker reached directly had nothing). A body declared or sent past
:data:`MAX_BODY_BYTES` is answered 413 at once and the connection closed; the app never sees it.
Bodies up to that size still reach the app, which refuses those over its own limits (the API's
2 MB, Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE``) with its own answers.

And it gives every status its standard reason phrase. Twisted writes the status line from its
own table (``twisted.web.http.RESPONSES``), which lacks 429 and a dozen others: the API's and
the site's 429s went out as ``HTTP/1.1 429 Unknown Status``. The phrases now come from the
standard library's :class:`http.HTTPStatus` (Twisted's table only for a code it does not know).
"""

from __future__ import annotations

import io
from http import HTTPStatus
from typing import Any

from django.conf import settings

# Twice the largest body any page takes (a conversation import): room for the app's own refusals.
MAX_BODY_BYTES = 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
_TOO_LARGE = (
    b"HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain\r\nContent-Length: 30\r\n"
    b"Connection: close\r\n\r\nThe request body is too large."
)
#: The reason phrase of each standard status, for the status line.
REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}

_installed = False


def _refuse_too_large(request: Any) -> None:
    """Answer 413 and close; whatever of the body is still parsed is dropped."""
    request._too_large = True
    request.content = io.BytesIO()
    transport = request.channel.transport if request.channel is not None else None
    if transport is not None:
        transport.write(_TOO_LARGE)
        transport.loseConnection()


def install() -> None:
    global _installed
    if _installed:
        return
    from daphne.http_protocol import WebRequest

    create = WebRequest.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        create(self, *args, **kwargs)

    got_length = WebRequest.gotLength
    process = WebRequest.process
    set_response_code = WebRequest.setResponseCode

    def setResponseCode(self: Any, code: int, message: bytes | None = None) -> None:
        set_response_code(self, code, REASONS.get(code) if message is None else message)

    def gotLength(self: Any, length: int | None) -> None:
        self._too_large = False
        self._body_bytes = 0
        if length is not None and length > MAX_BODY_BYTES:
            _refuse_too_large(self)
            return
        got_length(self, length)

    def handleContentChunk(self: Any, data: bytes) -> None:
        if self._too_large:
            return
        self._body_bytes += len(data)
        if self._body_bytes > MAX_BODY_BYTES:  # a chunked body, which declares no length
            _refuse_too_large(self)
            return
        self.content.write(data)

    def process_unless_refused(self: Any) -> Any:
        if getattr(self, "_too_large", False):
            return None
        return process(self)

    WebRequest.__init__ = __init__  # type: ignore[method-assign]
    WebRequest.gotLength = gotLength  # type: ignore[method-assign]
    WebRequest.handleContentChunk = handleContentChunk  # type: ignore[method-assign]
    WebRequest.process = process_unless_refused  # type: ignore[method-assign]
    WebRequest.setResponseCode = setResponseCode  # type: ignore[method-assign]
    _installed = True
