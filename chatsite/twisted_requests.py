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
"""

from __future__ import annotations

from typing import Any

_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from daphne.http_protocol import WebRequest

    create = WebRequest.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parsePOSTFormSubmission", False)
        create(self, *args, **kwargs)

    WebRequest.__init__ = __init__  # type: ignore[method-assign]
    _installed = True
