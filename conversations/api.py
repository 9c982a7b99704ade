"""The page where people manage their personal API keys (``/settings/api-keys/``).

The DeepSeek-compatible API itself is not a Django view: it is the ASGI application in
``conversations/api_asgi.py``, mounted in front of Django by ``chatsite/asgi.py``.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from conversations import api_keys, quota, shown_once
from conversations.errors import ChatError, InvalidParameter

# --- the settings page ------------------------------------------------------------------------


def _expiry_from(form_value: str) -> datetime | None:
    """A date from the form means "valid through that day" in the deployment's time zone."""
    if not form_value:
        return None
    try:
        day = datetime.strptime(form_value, "%Y-%m-%d").date()
        end = datetime.combine(day + timedelta(days=1), time.min)
    except (ValueError, OverflowError):  # OverflowError: the day after 9999-12-31
        raise InvalidParameter(
            "The expiry must be a date (YYYY-MM-DD) before 9999-12-31.", param="expires_at"
        ) from None
    return timezone.make_aware(end)


# A key is shown once, in the answer to the form that creates it (``shown_once``).
KEY_FORMS = "api_key"


@login_required
def api_keys_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    context: dict[str, Any] = {"created": None, "error": None, "form": {}}
    status = 200
    if request.method == "POST" and shown_once.already_sent(request, KEY_FORMS):
        context["error"] = (
            "This form was already sent, and its key created: it is listed below (its secret "
            "was shown once). If you did not copy it, revoke it and create another."
        )
        status = 409
    elif request.method == "POST":
        form = request.POST
        context["form"] = {"name": form.get("name", ""), "expires_at": form.get("expires_at", "")}
        try:
            new = api_keys.create_key(
                user,  # type: ignore[arg-type]
                name=form.get("name", ""),
                expires_at=_expiry_from(form.get("expires_at", "").strip()),
                save_history=form.get("save_history") == "on",
            )
        except ChatError as error:
            context["error"] = error.message
            status = 400
        else:
            shown_once.mark_sent(request, KEY_FORMS)
            # Rendered, not redirected: the secret must not travel through a session or URL.
            context["created"] = new
            context["form"] = {}
            status = 201
    context["keys"] = api_keys.keys_of(user)  # type: ignore[arg-type]
    # Keys stay the user's to manage (revoke above all) even while their policy refuses the
    # API's calls: the page says so, rather than let each call find out (403).
    context["api_access"] = quota.limits_for(user).api_access  # type: ignore[arg-type]
    context["form_id"] = shown_once.new_form_id()
    context["now"] = timezone.now()
    return shown_once.not_stored(render(request, "api_keys/list.html", context, status=status))


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        key = api_keys.access_key(request.user, key_id)  # type: ignore[arg-type]
    except ChatError as error:
        return HttpResponse(error.message, status=error.status)
    api_keys.revoke_key(key, request.user)  # type: ignore[arg-type]
    return redirect("api-keys")


@login_required
@require_POST
def api_key_history(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        key = api_keys.access_key(request.user, key_id)  # type: ignore[arg-type]
    except ChatError as error:
        return HttpResponse(error.message, status=error.status)
    api_keys.set_save_history(key, request.POST.get("save_history") == "on", request.user)  # type: ignore[arg-type]
    return redirect("api-keys")
