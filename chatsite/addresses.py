"""The client's address, taken one way everywhere: the ASGI scope's ``client``.

Behind the compose proxy daphne fills it from X-Forwarded-For (``--proxy-headers``), which
nginx sets to the address the connection came from, replacing any the client sent
(``deploy/nginx.conf``); Django's ``REMOTE_ADDR`` is the same value. Sign-in throttling, the
sockets' places and the share links' rate limit all count by it, as :func:`counted_as` groups
it: an IPv6 client is given a whole /64 network (a host picks new addresses in it at will, by
design: privacy extensions), so counted one address at a time it was never throttled at all.
"""

from __future__ import annotations

import ipaddress
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


def counted_as(address: str) -> str:
    """What the limits count ``address`` as: an IPv6 address as its /64 network
    (``2001:db8:1:2::/64``), an IPv4-mapped one as its IPv4 address, any other as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip), 64), strict=False))
    return str(ip)
