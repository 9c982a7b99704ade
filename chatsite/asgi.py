"""ASGI entry point: HTTP through Django, websockets through Channels.

Websockets pass the trusted-origin check, then session authentication, then the URL router.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up first
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from chatsite.origins import TrustedOriginValidator  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": TrustedOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
            settings.CSRF_TRUSTED_ORIGINS,
        ),
    }
)
