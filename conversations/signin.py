"""Sign-in throttling: guessing passwords is slowed to a handful of tries per window, without
one guesser locking out the others behind the same address (an office's NAT) or the account
they guess at, from a browser its owner signed in with.

Failures are counted, in the database (shared by every worker), in a window that starts with
the first failure, under keys:

- ``account:<name> from <address>``: an account's failures from one address (the name
  casefolded: ``alice`` and ``ALICE`` share it). ``PER_ACCOUNT`` of them and the account is
  refused from there.
- ``address:<address>``: every failure from the address. Past ``PER_ADDRESS`` of them, an
  account with a failure of its own from there is refused (it had one try, not five); an
  account with none is still checked, and a right password signs it in. Past
  ``ADDRESS_CEILING``, every try from there without the cookie below is refused until the
  address's window ends: a new browser, a private window, a shared computer where someone else
  signed in last, right password or not.
- ``device:<account id>:<nonce>``: a browser that signed in to the account before, with its
  current password, carries a cookie (``DEVICE_COOKIE``, set on each success and on a change
  of one's own password; one account, the last signed in there). It holds no name, only a
  keyed hash of the account and its password hash and a random nonce of its own (signed, with
  the time, to end after ``DEVICE_LIFETIME``), checked against the account the typed username
  names, exactly as Django's sign-in looks it up. Its tries at that account are counted under
  this key alone, ``PER_ACCOUNT`` a window for each browser, and the address's counts neither
  refuse nor grow from them: a guesser at the same address cannot lock the owner out of her
  own browsers, nor can whoever holds one of their cookies lock her out of the others. More
  cookies give no more guesses to anyone without the password: a cookie is minted only by a
  success, and a new password (changed or reset) ends every cookie of the account. Signing out
  does not (it is what makes the browser known), so on a shared computer whoever comes next
  gets that browser's tries too, until someone else signs in there.

What one address gets, a window: ``PER_ACCOUNT`` wrong passwords at an account, and
``ADDRESS_CEILING`` in all, spread as it likes: ``PER_ADDRESS`` of them at most ``PER_ACCOUNT``
an account, then one for each account (or made-up name) not yet tried from there. That is
about one guess at every account of the site, up to ``ADDRESS_CEILING``; it was
``PER_ADDRESS`` while a guesser locked the office out, and lowering it again means refusing
the office's new browsers sooner (a lower ceiling). Tries in flight at once may each pass the
check before any is counted: a few more. An IPv6 client is counted by its /64 network; many
addresses are many allowances.

A refusal says for how long, and comes before the password is even checked. Nothing here asks
whether the account exists: an unknown name is counted and refused as a real one (Django checks
a password against a made-up hash for it, taking as long as for a real one), and a cookie tried
at any other name, real or made up, is looked up and hashed alike, and counts as no cookie. A
success clears the count of the key it was counted under.

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
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.contrib.auth.views import LoginView
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

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
    in to that account before (``device``: the account's id and the cookie's nonce, checked)."""

    username: str
    address: str
    device: tuple[int, str] | None = None

    @property
    def account_key(self) -> str:
        return f"account:{_name(self.username)} from {counted_as(self.address)}"

    @property
    def address_key(self) -> str:
        return f"address:{counted_as(self.address)}"

    @property
    def device_key(self) -> str:
        assert self.device is not None
        account, nonce = self.device
        return f"device:{account}:{nonce}"

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


def _device_tag(user: Any) -> str:
    """What a browser that signed in to ``user`` holds: good for that account, and only while
    its password (hash) is the one it signed in with."""
    return salted_hmac(_DEVICE_SALT, f"{user.pk}:{user.password}", algorithm="sha256").hexdigest()


def _device_cookie(user: Any) -> dict[str, str]:
    """A new cookie's content for a browser that signed in to ``user``: its tag, and a nonce
    that gives the browser a count of its own."""
    return {"t": _device_tag(user), "n": secrets.token_urlsafe(16)}


def _device_of(request: HttpRequest | None, username: str) -> tuple[int, str] | None:
    """The id of ``username``'s account and the cookie's nonce if the request's browser holds
    a cookie of that account."""
    value = request.COOKIES.get(DEVICE_COOKIE) if request is not None else None
    if not value:
        return None
    try:
        device = signing.loads(value, salt=_DEVICE_SALT, max_age=DEVICE_LIFETIME)
    except signing.BadSignature:
        return None
    # Cookies of an older form (a name and a nonce; a tag alone) are no cookie.
    if not isinstance(device, dict):
        return None
    tag, nonce = device.get("t"), device.get("n")
    if not isinstance(tag, str) or not isinstance(nonce, str) or not 0 < len(nonce) <= 64:
        return None
    # As Django's ModelBackend finds the account (exactly, case and all); a name of no account
    # is hashed too, so that a cookie says no more about which names exist than its absence.
    user_model = get_user_model()
    try:
        user = user_model._default_manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        _device_tag(user_model())
        return None
    return (user.pk, nonce) if constant_time_compare(tag, _device_tag(user)) else None


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
    """Sets the cookie of a browser that just signed in, or changed its account's password
    (``request._signin_device``)."""

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
        user = self.get_user()  # type: ignore[attr-defined]
        if self.request is not None and user is not None:  # this browser signs in: known now
            self.request._signin_device = _device_cookie(user)  # type: ignore[attr-defined]
        return cleaned


class SignInForm(ThrottledSignIn, AuthenticationForm):
    pass


class AdminSignInForm(ThrottledSignIn, AdminAuthenticationForm):
    pass


class WritesOnlyThePassword:
    """For Django's password forms: only the password column is written. Django saves the whole
    row, as read when the request began (a second of hashing before): an admin's deactivation,
    or a staff flag taken off, committed meanwhile was written back over, the account active
    again."""

    def set_password_and_save(
        self, user: Any, *args: Any, commit: bool = True, **kwargs: Any
    ) -> Any:
        user = super().set_password_and_save(user, *args, commit=False, **kwargs)  # type: ignore[misc]
        if commit:
            user.save(update_fields=["password"])
        return user


class ThrottledPasswordChange(WritesOnlyThePassword):
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

    def save(self, commit: bool = True) -> Any:
        """The new password ends the account's cookies; this browser, which knew the old one,
        gets the new one's."""
        user = super().save(commit)  # type: ignore[misc]
        if self.request is not None and self.request.user.pk == user.pk:  # one's own, always
            self.request._signin_device = _device_cookie(user)  # type: ignore[attr-defined]
        return user


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
