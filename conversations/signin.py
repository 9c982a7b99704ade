"""Sign-in throttling: guessing passwords is slowed to a handful of tries per window.

Failures are counted per account name from one address (``PER_ACCOUNT``) and per address
(``PER_ADDRESS``), in the database (shared by every worker), in a window that starts with the
first failure. Past either allowance, sign-in from that address is refused, saying for how
long, before the password is even checked; a success clears the account's count. An address
alone never locks an account: its owner signs in from elsewhere.

Changing one's password asks for the current one: another place to guess it, for whoever has
a session of the account (a tab left signed in), and a right guess there takes the account
for good. Its wrong answers count as failed sign-ins of the account, and past the allowance
it is refused the same way (``ThrottledPasswordChange``; the site's page and the admin's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone

from chatsite.addresses import counted_as, request_address
from conversations.models import SignInFailures

# As a share link's page has it (sharing_views); the sign-in page may hold a link's token too.
LINK_REFERRER_POLICY = "strict-origin"

WINDOW = timedelta(minutes=15)
PER_ACCOUNT = 5
PER_ADDRESS = 50

_COUNT_SQL = """
    INSERT INTO conversations_signinfailures AS f (key, window_start, failures)
    VALUES (%(key)s, now(), 1)
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN f.window_start > now() - make_interval(secs => %(window)s) THEN f.failures + 1 ELSE 1 END,
        window_start = CASE WHEN f.window_start > now() - make_interval(secs => %(window)s)
                            THEN f.window_start ELSE now() END
"""


def _account_key(username: str, address: str) -> str:
    return f"account:{username.strip().casefold()[:150]} from {counted_as(address)}"


def _keys(username: str, address: str) -> dict[str, int]:
    """Each key counted for a sign-in, and its allowance."""
    return {
        _account_key(username, address): PER_ACCOUNT,
        f"address:{counted_as(address)}": PER_ADDRESS,
    }


def wait_left(username: str, address: str) -> timedelta | None:
    """How long sign-in of ``username`` from ``address`` stays refused; None: it may try."""
    keys = _keys(username, address)
    now = timezone.now()
    waits = [
        row.window_start + WINDOW - now
        for row in SignInFailures.objects.filter(pk__in=keys, window_start__gt=now - WINDOW)
        if row.failures >= keys[row.pk]
    ]
    return max(waits) if waits else None


def count_failure(username: str, address: str) -> None:
    with connection.cursor() as cursor:
        for key in _keys(username, address):
            cursor.execute(_COUNT_SQL, {"key": key, "window": WINDOW.total_seconds()})
    # Windows long gone are of no use: the table stays the size of the last day's failures.
    SignInFailures.objects.filter(window_start__lt=timezone.now() - timedelta(days=1)).delete()


def clear(username: str, address: str) -> None:
    SignInFailures.objects.filter(pk=_account_key(username, address)).delete()


def _refusal(wait: timedelta) -> ValidationError:
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    return ValidationError(
        f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        code="throttled",
    )


def _throttled(
    username: str, request: HttpRequest | None, check: Callable[[], Any], wrong: str
) -> Any:
    """``check()`` (a form's test of a password), unless the account is throttled from the
    request's address; its failure with code ``wrong`` counts against both, its success
    clears them."""
    address = request_address(request)
    wait = wait_left(username, address)
    if wait is not None:
        raise _refusal(wait)
    try:
        result = check()
    except ValidationError as error:
        if getattr(error, "code", None) == wrong:
            count_failure(username, address)
        raise
    clear(username, address)
    return result


class ThrottledSignIn:
    """For Django's sign-in forms (``request`` and ``cleaned_data`` are theirs)."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        check = super().clean  # type: ignore[misc]
        cleaned: dict[str, Any] = _throttled(username, self.request, check, "invalid_login")
        return cleaned


class SignInForm(ThrottledSignIn, AuthenticationForm):
    pass


class AdminSignInForm(ThrottledSignIn, AdminAuthenticationForm):
    pass


class ThrottledPasswordChange:
    """For Django's password-change forms (``user`` and ``cleaned_data`` are theirs; the view
    sets ``request``): a wrong current password is a failed sign-in of the account from the
    request's address, and past the allowance the current password is not even checked."""

    request: HttpRequest | None = None
    user: Any
    cleaned_data: dict[str, Any]

    def clean_old_password(self) -> str:
        check = super().clean_old_password  # type: ignore[misc]
        old_password: str = _throttled(
            self.user.get_username(), self.request, check, "password_incorrect"
        )
        return old_password


class PasswordChangeThrottledForm(ThrottledPasswordChange, PasswordChangeForm):
    pass


class AdminPasswordChangeThrottledForm(ThrottledPasswordChange, AdminPasswordChangeForm):
    pass


class SignInView(LoginView):
    """The sign-in page, throttled. Its address may carry a share link's token: a link sends
    an anonymous viewer here (``?next=/s/<token>/``) while the admin allows no public links.
    Like the link's own page, it has its requests (styles, scripts) name only our origin in
    their Referer, which a proxy's access log writes down."""

    authentication_form = SignInForm

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().dispatch(request, *args, **kwargs)
        response.headers["Referrer-Policy"] = LINK_REFERRER_POLICY
        return response
