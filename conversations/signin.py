"""Sign-in throttling: guessing passwords is slowed to a handful of tries per window, without
one guesser locking out the others behind the same address (an office's NAT) or the account
they guess at, from the browser its owner signs in with.

Failures are counted, in the database (shared by every worker), in a window that starts with
the first failure, under keys:

- ``account:<name> from <address>``: an account's failures from one address. ``PER_ACCOUNT``
  of them and the account is refused from there.
- ``address:<address>``: every failure from the address. Past ``PER_ADDRESS`` of them, an
  account with a failure of its own from there is refused (it had one try, not five); an
  account with none is still checked, and a right password signs it in. Past
  ``ADDRESS_CEILING``, every account is refused from there: an address cannot try names
  without end.
- ``device:<nonce>``: a browser that signed in to the account before carries a signed cookie
  naming it (``DEVICE_COOKIE``, set on each success: the last account signed in there). Its
  tries at that account are counted under the cookie's own key alone, ``PER_ACCOUNT`` of them,
  and the address's counts neither refuse nor grow from them: a guesser at the same address
  cannot lock the owner out of her own browser, and the cookie gives no more tries than an
  address has.

A refusal says for how long, and comes before the password is even checked. Nothing here asks
whether the account exists: an unknown name is counted and refused as a real one (Django checks
a password against a made-up hash for it, taking as long as for a real one). A success clears
the count of the key it was counted under.

Changing one's password asks for the current one: another place to guess it, for whoever has
a session of the account (a tab left signed in), and a right guess there takes the account
for good. Its wrong answers count as failed sign-ins of the account from the address (never
under a browser's cookie: whoever holds the tab holds the cookie), and past the allowance it
is refused the same way (``ThrottledPasswordChange``; the site's page and the admin's).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.views import LoginView
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone

from chatsite.addresses import counted_as, request_address
from chatsite.middleware import Middleware
from conversations.models import SignInFailures

# As a share link's page has it (sharing_views); the sign-in page may hold a link's token too.
LINK_REFERRER_POLICY = "strict-origin"

WINDOW = timedelta(minutes=15)
PER_ACCOUNT = 5
PER_ADDRESS = 50
ADDRESS_CEILING = 500

DEVICE_COOKIE = "signin_device"
DEVICE_LIFETIME = timedelta(days=90)
_DEVICE_SALT = "conversations.signin.device"

_COUNT_SQL = """
    INSERT INTO conversations_signinfailures AS f (key, window_start, failures)
    VALUES (%(key)s, now(), 1)
    ON CONFLICT (key) DO UPDATE SET
        failures = CASE WHEN f.window_start > now() - make_interval(secs => %(window)s) THEN f.failures + 1 ELSE 1 END,
        window_start = CASE WHEN f.window_start > now() - make_interval(secs => %(window)s)
                            THEN f.window_start ELSE now() END
"""


def _name(username: str) -> str:
    return username.strip().casefold()[:150]


@dataclass(frozen=True)
class Attempt:
    """A try at an account's password: from an address, and maybe from a browser that signed
    in to that account before (``device``: its cookie's nonce)."""

    username: str
    address: str
    device: str | None = None

    @property
    def account_key(self) -> str:
        return f"account:{_name(self.username)} from {counted_as(self.address)}"

    @property
    def address_key(self) -> str:
        return f"address:{counted_as(self.address)}"

    @property
    def device_key(self) -> str:
        return f"device:{self.device}"

    def counted_under(self) -> list[str]:
        if self.device is not None:
            return [self.device_key]
        return [self.account_key, self.address_key]


def wait_left(attempt: Attempt) -> timedelta | None:
    """How long ``attempt`` stays refused (the rule above); None: its password is checked."""
    keys = attempt.counted_under()
    now = timezone.now()
    rows = {
        row.pk: row
        for row in SignInFailures.objects.filter(pk__in=keys, window_start__gt=now - WINDOW)
    }

    def failures(key: str) -> int:
        return rows[key].failures if key in rows else 0

    def ends(key: str) -> timedelta:
        return rows[key].window_start + WINDOW - now

    if attempt.device is not None:
        return ends(attempt.device_key) if failures(attempt.device_key) >= PER_ACCOUNT else None
    account, address = attempt.account_key, attempt.address_key
    waits = []
    if failures(account) >= PER_ACCOUNT:
        waits.append(ends(account))
    if failures(address) >= ADDRESS_CEILING:
        waits.append(ends(address))
    elif failures(address) >= PER_ADDRESS and failures(account) > 0:
        waits.append(min(ends(address), ends(account)))  # until either window ends
    return max(waits) if waits else None


def count_failure(attempt: Attempt) -> None:
    with connection.cursor() as cursor:
        for key in attempt.counted_under():
            cursor.execute(_COUNT_SQL, {"key": key, "window": WINDOW.total_seconds()})
    # Windows long gone are of no use: the table stays the size of the last day's failures.
    SignInFailures.objects.filter(window_start__lt=timezone.now() - timedelta(days=1)).delete()


def clear(attempt: Attempt) -> None:
    key = attempt.device_key if attempt.device is not None else attempt.account_key
    SignInFailures.objects.filter(pk=key).delete()


def _device_of(request: HttpRequest | None, username: str) -> str | None:
    """The nonce of the request's browser cookie if it names ``username``'s account."""
    value = request.COOKIES.get(DEVICE_COOKIE) if request is not None else None
    if not value:
        return None
    try:
        device = signing.loads(value, salt=_DEVICE_SALT, max_age=DEVICE_LIFETIME)
    except signing.BadSignature:
        return None
    if not isinstance(device, dict) or device.get("account") != _name(username):
        return None
    nonce = device.get("nonce")
    return nonce if isinstance(nonce, str) else None


def _refusal(wait: timedelta) -> ValidationError:
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    return ValidationError(
        f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}.",
        code="throttled",
    )


def _throttled(attempt: Attempt, check: Callable[[], Any], wrong: str) -> Any:
    """``check()`` (a form's test of a password), unless ``attempt`` is refused; its failure
    with code ``wrong`` is counted, its success clears its count."""
    wait = wait_left(attempt)
    if wait is not None:
        raise _refusal(wait)
    try:
        result = check()
    except ValidationError as error:
        if getattr(error, "code", None) == wrong:
            count_failure(attempt)
        raise
    clear(attempt)
    return result


class DeviceCookieMiddleware(Middleware):
    """Sets the cookie of a browser that just signed in (``request._signin_device``)."""

    def after(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        device = getattr(request, "_signin_device", None)
        if device is not None:
            response.set_cookie(
                DEVICE_COOKIE,
                signing.dumps(device, salt=_DEVICE_SALT),
                max_age=int(DEVICE_LIFETIME.total_seconds()),
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response


class ThrottledSignIn:
    """For Django's sign-in forms (``request`` and ``cleaned_data`` are theirs)."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        check = super().clean  # type: ignore[misc]
        device = _device_of(self.request, username)
        attempt = Attempt(username, request_address(self.request), device)
        cleaned: dict[str, Any] = _throttled(attempt, check, "invalid_login")
        if self.request is not None:  # this browser signs in to the account: it is known now
            self.request._signin_device = {  # type: ignore[attr-defined]
                "account": _name(username),
                "nonce": secrets.token_urlsafe(16),
            }
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
        attempt = Attempt(self.user.get_username(), request_address(self.request))
        old_password: str = _throttled(attempt, check, "password_incorrect")
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
