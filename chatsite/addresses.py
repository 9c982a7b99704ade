"""The client's address, taken one way everywhere: the ASGI scope's ``client``.

Behind the compose proxy daphne fills it from X-Forwarded-For (``--proxy-headers``), which
nginx sets to the address the connection came from, replacing any the client sent
(``deploy/nginx.conf``); Django's ``REMOTE_ADDR`` is the same value. Sign-in throttling, the
sockets' places and the share links' rate limit all count by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpRequest

UNKNOWN = "unknown"


def scope_address(scope: Mapping[str, Any]) -> str:
    """The address of a websocket's (or any ASGI connection's) client."""
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN


def request_address(request: HttpRequest | None) -> str:
    """The address of an HTTP request's client (``REMOTE_ADDR``, from the same scope)."""
    return (request.META.get("REMOTE_ADDR") if request is not None else None) or UNKNOWN
