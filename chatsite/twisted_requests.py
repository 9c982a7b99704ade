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
Bodies up to that size still reach the app, which refuses those over its own limits (Django's
``DATA_UPLOAD_MAX_MEMORY_SIZE``) with its own answers. The API's paths are held to the API's own
limit (``api_asgi.MAX_BODY_BYTES``, 2 MB) here already, so the worker keeps no more of a call
than the API takes, however a client sends it (a declared length, a chunked body, after an
``Expect: 100-continue``, which is then answered with the 413 instead of a 100). The 413 goes
out at once; the rest of such a body, up to :data:`MAX_BODY_BYTES`, is read and dropped before
the connection closes, so that a proxy streaming it to the worker relays the 413 instead of
failing on a closed connection.

Refusals on the API's paths are in the API's envelope (``api_asgi.early_refusal``), as every
answer of the API is: the 413 above, and Twisted's own 400 for a request that is not valid
HTTP (a malformed header or chunked body, a body declared both by ``Content-Length`` and
``Transfer-Encoding``, headers past 16 kB), which was a bare status line with no body, so a
client had nothing to report but "400"; one header line past 16 kB had no answer at all (the
connection closed). Elsewhere they stay plain.

It gives a request a deadline for its headers and body (``REQUEST_RECEIVE_TIMEOUT_SECONDS``,
60 s, from the request's first read until its body is in). Twisted's only timer before a request
reaches the app is its idle timeout (60 s), which restarts with every byte received: a client
sending a header, or a body, a byte every 59 s held its connection for days (16 kB of headers,
2 MB of an API body), and enough of them would exhaust the worker's sockets. Past the deadline
the answer is a 408 (in the API's envelope on its paths, plain elsewhere) and the connection is
closed, forcibly if the client does not read it. Once the request is handed to the app the
deadline is gone: a long response (a stream) and a websocket are not bounded by it, and a
kept-alive connection waiting for its next request has Twisted's idle timeout as before.

And it gives every status its standard reason phrase. Twisted writes the status line from its
own table (``twisted.web.http.RESPONSES``), which lacks 429 and a dozen others: the API's and
the site's 429s went out as ``HTTP/1.1 429 Unknown Status``. The phrases now come from the
standard library's :class:`http.HTTPStatus` (Twisted's table only for a code it does not know).

And Twisted writes no access line of its own. Its ``HTTPFactory`` formatted one per request
(``combinedLogFormatter``: the date, the escaped request line, referrer and user agent) into
Twisted's log, which daphne prints nowhere: about 3 % of an API worker's busy samples at one
request at a time in a py-spy profile (bench/RESULTS.md, "Nineteenth session"). daphne's own
access log (``--access-log``) is untouched.
"""

from __future__ import annotations

import io
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from django.conf import settings

from conversations import api_asgi

# Twice the largest body any page takes (a conversation import): room for the app's own refusals.
MAX_BODY_BYTES = 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
_TOO_LARGE = (
    b"HTTP/1.1 413 Content Too Large\r\nContent-Type: text/plain\r\nContent-Length: 30\r\n"
    b"Connection: close\r\n\r\nThe request body is too large."
)
#: The reason phrase of each standard status, for the status line.
REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}

_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: text/plain\r\nContent-Length: 41\r\n"
    b"Connection: close\r\n\r\nThe request took too long to be received."
)
_API_TIMED_OUT = (
    "The request's headers and body took more than {} s to arrive; send the whole request at once."
)

_installed = False


_NOT_HTTP = (
    "The request is not valid HTTP/1.1: a malformed request line, header or chunked body, "
    "headers larger than 16 kB, or a body declared by both Content-Length and "
    "Transfer-Encoding."
)


def _for_the_api(target: bytes | None) -> bool:
    """Whether a request target (``/v1/models?x=1``) is one of the API's paths, as daphne
    will hand the request on (``chatsite/asgi.py`` routes by the same test)."""
    if not target:
        return False
    path = unquote(target.split(b"?", 1)[0].decode("ascii", "replace"))
    return api_asgi.serves(path)


def _refuse_too_large(request: Any) -> None:
    """Answer 413; whatever of the body is still parsed is dropped. The connection is closed
    once the body ends, or at once past :data:`MAX_BODY_BYTES` (see :func:`_drop`)."""
    request._too_large = True
    request.content = io.BytesIO()
    transport = request.channel.transport if request.channel is not None else None
    if transport is not None:
        if request._for_the_api:
            megabytes = api_asgi.MAX_BODY_BYTES // (1024 * 1024)
            answer = api_asgi.early_refusal(413, f"The request body is larger than {megabytes} MB.")
        else:
            answer = _TOO_LARGE
        transport.write(answer)
        _drop(request, 0)


def _drop(request: Any, received: int) -> None:
    """Count ``received`` bytes of a refused body; close once it passes MAX_BODY_BYTES.

    Below that (an API call past its 2 MB), the rest is read and thrown away before the
    connection closes: a proxy still sending the body when the connection closed under it
    (nginx streams request bodies to the worker) answered its client 502, not our 413.
    """
    request._body_bytes += received
    declared = request._declared_length
    if request._body_bytes > MAX_BODY_BYTES or (declared or 0) > MAX_BODY_BYTES:
        transport = request.channel.transport if request.channel is not None else None
        if transport is not None:
            transport.loseConnection()


def _cancel_receive_deadline(channel: Any) -> None:
    deadline = getattr(channel, "_receive_deadline", None)
    channel._receive_deadline = None
    if deadline is not None and deadline.active():
        deadline.cancel()


def _receive_deadline_passed(channel: Any) -> None:
    """A request still not received whole at its deadline: a 408, and the connection closed
    (aborted if the client does not take the answer: Twisted's own ``timeoutConnection``)."""
    channel._receive_deadline = None
    if channel.transport is None or channel._handlingRequest:
        return
    if channel.requests and getattr(channel.requests[-1], "_too_large", False):
        # Refused already (its 413 is out), the rest of its body being dropped: just close.
        channel.timeoutConnection()
        return
    if _for_the_api(getattr(channel, "_path", None)):
        seconds = f"{settings.REQUEST_RECEIVE_TIMEOUT_SECONDS:g}"
        answer = api_asgi.early_refusal(408, _API_TIMED_OUT.format(seconds))
    else:
        answer = _TIMED_OUT
    channel.transport.write(answer)
    channel.timeoutConnection()


def install() -> None:
    global _installed
    if _installed:
        return
    from daphne.http_protocol import HTTPFactory, WebRequest
    from twisted.web.http import HTTPChannel

    create = WebRequest.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        create(self, *args, **kwargs)

    got_length = WebRequest.gotLength
    process = WebRequest.process
    set_response_code = WebRequest.setResponseCode
    refuse_bad_request = HTTPChannel._respondToBadRequestAndDisconnect
    send_100_continue = HTTPChannel._send100Continue
    data_received = HTTPChannel.dataReceived
    all_content_received = HTTPChannel.allContentReceived
    connection_lost = HTTPChannel.connectionLost

    def dataReceived(self: Any, data: bytes) -> None:
        data_received(self, data)
        # A request still incomplete once its first bytes are parsed gets its deadline (a
        # request that came whole in one read, nearly all of them, costs no timer); the body
        # all in ends it. Bytes while the app handles a request (a pipelined request's, which
        # waits its turn) start none.
        if not self._handlingRequest and getattr(self, "_receive_deadline", None) is None:
            self._receive_deadline = self.callLater(
                settings.REQUEST_RECEIVE_TIMEOUT_SECONDS, lambda: _receive_deadline_passed(self)
            )

    def allContentReceived(self: Any) -> None:
        _cancel_receive_deadline(self)
        all_content_received(self)

    def connectionLost(self: Any, reason: Any) -> None:
        _cancel_receive_deadline(self)
        connection_lost(self, reason)

    def setResponseCode(self: Any, code: int, message: bytes | None = None) -> None:
        set_response_code(self, code, REASONS.get(code) if message is None else message)

    def gotLength(self: Any, length: int | None) -> None:
        self._too_large = False
        self._body_bytes = 0
        self._declared_length = length
        # The request line is in (the channel's), the request's own path not yet.
        self._for_the_api = _for_the_api(getattr(self.channel, "_path", None))
        self._body_limit = api_asgi.MAX_BODY_BYTES if self._for_the_api else MAX_BODY_BYTES
        if length is not None and length > self._body_limit:
            _refuse_too_large(self)
            return
        got_length(self, length)

    def handleContentChunk(self: Any, data: bytes) -> None:
        if self._too_large:
            _drop(self, len(data))
            return
        self._body_bytes += len(data)
        if self._body_bytes > self._body_limit:  # a chunked body, which declares no length
            _refuse_too_large(self)
            return
        self.content.write(data)

    def process_unless_refused(self: Any) -> Any:
        if getattr(self, "_too_large", False):
            # The refused body has ended (its 413 went out when it was refused).
            self.channel.transport.loseConnection()
            return None
        return process(self)

    def line_length_exceeded(self: Any, line: bytes) -> None:
        # One line past 16 kB (Twisted's LineReceiver.MAX_LENGTH, the headers' whole limit
        # too): Twisted closed the connection without an answer; refused like too many headers.
        self._respondToBadRequestAndDisconnect()

    def respond_to_bad_request(self: Any) -> None:
        if not _for_the_api(getattr(self, "_path", None)):
            refuse_bad_request(self)
            return
        self.transport.write(api_asgi.early_refusal(400, _NOT_HTTP))
        self.loseConnection()

    def send_100_continue_unless_refused(self: Any) -> None:
        # Twisted asks for the rest of the body after gotLength, even one that refused it.
        if not getattr(self.requests[-1], "_too_large", False):
            send_100_continue(self)

    HTTPChannel.dataReceived = dataReceived  # type: ignore[method-assign]
    HTTPChannel.allContentReceived = allContentReceived  # type: ignore[method-assign]
    HTTPChannel.connectionLost = connectionLost  # type: ignore[method-assign]
    HTTPChannel._respondToBadRequestAndDisconnect = respond_to_bad_request  # type: ignore[method-assign]
    HTTPChannel.lineLengthExceeded = line_length_exceeded  # type: ignore[method-assign]
    HTTPChannel._send100Continue = send_100_continue_unless_refused  # type: ignore[method-assign]
    WebRequest.__init__ = __init__  # type: ignore[method-assign]
    WebRequest.gotLength = gotLength  # type: ignore[method-assign]
    WebRequest.handleContentChunk = handleContentChunk  # type: ignore[method-assign]
    WebRequest.process = process_unless_refused  # type: ignore[method-assign]
    WebRequest.setResponseCode = setResponseCode  # type: ignore[method-assign]
    HTTPFactory.log = _no_access_line  # type: ignore[method-assign]
    _installed = True


def _no_access_line(factory: Any, request: Any) -> None:
    """Twisted's access line of a request: none (see the module's docstring)."""
