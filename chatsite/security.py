"""Content Security Policy: no inline scripts or handlers, everything from our own origin; no
form field or query parameter that PostgreSQL could not store; and no page kept by a cache."""

from __future__ import annotations

import itertools

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from chatsite.middleware import Middleware
from conversations.errors import InvalidParameter

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware(Middleware):
    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response


PRIVATE = "private, no-store"


class PrivateByDefaultMiddleware(Middleware):
    """Every page and JSON read Django answers is for its one reader: a conversation, its
    export, the search, the team's and usage pages, a share link's transcript. With no
    Cache-Control, a shared cache (a proxy) could keep one and serve it again (a revoked link's
    transcript to anyone holding the token), and the browser's back/forward cache show it after
    signing out on a shared computer. So a response that does not say otherwise is
    ``private, no-store``. (Static files are WhiteNoise's, answered before this with their own
    caching; the API is not Django's, and says its own.)"""

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response.headers.setdefault("Cache-Control", PRIVATE)
        return response


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class RefuseNulMiddleware(Middleware):
    """A query parameter or form field holding U+0000 (``%00``) is refused with a 400 that
    names it, before any view: PostgreSQL text cannot hold it, so a view (ours or the admin's)
    would otherwise fail with an internal error. JSON bodies and websocket frames are checked
    where they are parsed (``conversations.text``)."""

    def before(self, request: HttpRequest) -> HttpResponse | None:
        form = request.POST.lists() if request.content_type in _FORMS else ()
        for name, values in itertools.chain(request.GET.lists(), form):
            if "\x00" in name or any(isinstance(v, str) and "\x00" in v for v in values):
                error = InvalidParameter(
                    f"The field {name.replace(chr(0), '')!r} contains a NUL character (U+0000).",
                    param=name.replace("\x00", ""),
                )
                if "application/json" in request.headers.get("Accept", ""):
                    return JsonResponse({"error": error.as_dict()}, status=400)
                return HttpResponseBadRequest(error.message, content_type="text/plain")
        return None
