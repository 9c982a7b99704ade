"""Pages that answer a form with a secret shown only this once (a new API key, a new share
link): the answer is rendered, not redirected, since the secret must not travel through a
session or URL — so reloading it would send the form again, and Back would show it again.

Each such form carries an id (:func:`new_form_id`); one already used creates nothing (the
last few ids of each kind are kept in the session), and the answer is never stored by the
browser (:func:`not_stored`)."""

from __future__ import annotations

import secrets

from django.http import HttpRequest, HttpResponse

FORM_ID_FIELD = "form_id"
USED_FORM_IDS_KEPT = 20


def _used_key(kind: str) -> str:
    return f"{kind}_forms_used"


def new_form_id() -> str:
    return secrets.token_urlsafe(16)


def already_sent(request: HttpRequest, kind: str) -> bool:
    """Whether this POST's form of ``kind`` was sent before and created its secret then."""
    form_id = request.POST.get(FORM_ID_FIELD, "")
    return bool(form_id) and form_id in request.session.get(_used_key(kind), [])


def mark_sent(request: HttpRequest, kind: str) -> None:
    """This POST's form of ``kind`` created its secret: sent again, it creates nothing."""
    form_id = request.POST.get(FORM_ID_FIELD, "")
    if form_id:
        used = request.session.get(_used_key(kind), [])
        request.session[_used_key(kind)] = [*used, form_id][-USED_FORM_IDS_KEPT:]


def not_stored(response: HttpResponse) -> HttpResponse:
    """The page may carry a secret: Back or a reload asks the server again rather than show
    the browser's copy."""
    response["Cache-Control"] = "no-store"
    return response
