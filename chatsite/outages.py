"""A page or JSON request that cannot reach the database is answered 503 with ``Retry-After``,
not 500: the database being out of reach for a moment (a restart, a failover, the pool's
connections all gone) is not the site's bug, the request can simply be made again, and the
browser's own retries (a page's catch-up read of a reply) wait as told. Logged as one warning
line, without a traceback."""

from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from chatsite.middleware import Middleware
from conversations.pgpool import DatabaseUnavailable

logger = logging.getLogger(__name__)

#: Seconds a client is told to wait before it asks again.
RETRY_AFTER_SECONDS = 5


def wants_json(request: HttpRequest) -> bool:
    return (
        request.path.endswith(".json")
        or "application/json" in request.headers.get("Accept", "")
        or request.content_type == "application/json"
    )


class DatabaseUnavailableMiddleware(Middleware):
    """Last in ``MIDDLEWARE``, so a view's exception reaches it first. Only the database's own
    failures to be reached or to answer (Django's ``OperationalError``: no connection within
    the pool's timeout, a connection lost, a statement cancelled; ``InterfaceError``: a
    connection already closed) are answered here; anything else stays a 500."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.warning(
            "%s %s answered 503: the database could not be reached (%s)",
            request.method,
            request.path,
            type(exception).__name__,
        )
        error = DatabaseUnavailable()
        response: HttpResponse
        if wants_json(request):
            response = JsonResponse(
                {"error": {**error.as_dict(), "retry_after": RETRY_AFTER_SECONDS}},
                status=error.status,
            )
        else:
            # Standalone, as 500.html: base.html would read the user, from the database.
            response = HttpResponse(render_to_string("503.html"), status=error.status)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
