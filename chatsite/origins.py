"""The websocket Origin check, built from CSRF_TRUSTED_ORIGINS.

Channels' ``AllowedHostsOriginValidator`` compares bare host names, so ``http://evil:8000`` passes
for a host ``evil`` and scheme or port are ignored. Browsers always send ``Origin`` on a websocket
handshake; a missing or ``null`` one comes from something that is not a page of ours, so it is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(origin: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) with the scheme's default port filled in; None if unusable."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


class TrustedOriginValidator:
    """ASGI middleware: websocket handshakes must come from one of the trusted origins."""

    def __init__(self, application: Any, trusted_origins: Iterable[str]) -> None:
        self.application = application
        self.trusted = {o for o in map(normalize_origin, trusted_origins) if o is not None}

    def is_trusted(self, origin: bytes | None) -> bool:
        if not origin:
            return False
        try:
            text = origin.decode("ascii")
        except UnicodeDecodeError:
            return False
        if text == "null":
            return False
        normalized = normalize_origin(text)
        return normalized is not None and normalized in self.trusted

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket":
            origin = dict(scope.get("headers") or []).get(b"origin")
            if not self.is_trusted(origin):
                denier = WebsocketDenier()
                return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
