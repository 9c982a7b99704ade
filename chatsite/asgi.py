"""ASGI entry point: the DeepSeek-compatible API, Django for the rest of HTTP, Channels for
websockets.

HTTP requests for the API's paths (``conversations.api_asgi.PATHS``) go to its own small ASGI
application, which never enters Django's request path; every other HTTP request is Django's.
Websockets pass the trusted-origin check, then session authentication, then the URL router.
"""

from __future__ import annotations

import gc
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from chatsite import logs, twisted_requests, twisted_websockets, twisted_writes  # noqa: E402
from chatsite.origins import TrustedOriginValidator  # noqa: E402
from conversations.api_asgi import ApiApplication  # noqa: E402
from conversations.api_asgi import serves as api_serves  # noqa: E402
from conversations.generation import start_with_the_server  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402


class StartServices:
    """Start the process's background services (generation channel, heartbeat, reaper) on the
    first connection, inside the server's event loop, if they are not running yet (daphne has
    no lifespan events: under it they start with its reactor, see the end of this module)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        from conversations.generation import get_service

        await get_service().ensure_started()
        return await self.app(scope, receive, send)


class HttpRouter:
    """The API's paths (and anything under ``/v1/`` or ``/beta/``) to the API application,
    everything else to Django."""

    def __init__(self, api: Any, django: Any) -> None:
        self.api = api
        self.django = django

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if api_serves(scope["path"]):
            return await self.api(scope, receive, send)
        return await self.django(scope, receive, send)


router = ProtocolTypeRouter(
    {
        "http": HttpRouter(ApiApplication(), django_application),
        "websocket": TrustedOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
            settings.CSRF_TRUSTED_ORIGINS,
        ),
    }
)
application = logs.untag_each_connection(StartServices(router))

# daphne's sockets send each frame when it is written (see chatsite/twisted_writes.py), and
# Twisted leaves POST bodies for the app to parse (chatsite/twisted_requests.py), and a socket
# that breaks the protocol is told why before it is closed (chatsite/twisted_websockets.py).
twisted_writes.install()
twisted_requests.install()
twisted_websockets.install()

# Under daphne the services start with the process, not its first connection: a worker
# restarted after a crash reaps what its predecessor left streaming with no traffic at all.
start_with_the_server()

# Everything imported by now lives as long as the process: moved out of the cyclic collector's
# reach, a full collection walks only what requests and streams create since. (It walks ~110k
# objects otherwise, ~0.1 s with the process stopped: a pause every open stream would feel.)
gc.freeze()
