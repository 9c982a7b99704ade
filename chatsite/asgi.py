"""ASGI entry point: HTTP through Django, websockets through Channels.

Websockets pass the trusted-origin check, then session authentication, then the URL router.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from chatsite.origins import TrustedOriginValidator  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402


class StartServices:
    """Start the process's background services (generation channel, heartbeat, reaper) on the
    first connection, inside the server's event loop (daphne has no lifespan events)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        from conversations.generation import get_service

        await get_service().ensure_started()
        return await self.app(scope, receive, send)


router = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": TrustedOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
            settings.CSRF_TRUSTED_ORIGINS,
        ),
    }
)
application = StartServices(router)
