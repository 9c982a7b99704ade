"""Tiny typed readers for environment variables that fail loudly.

Every setting comes from the environment and is parsed once, in ``chatsite/settings.py``.
A bad value raises :class:`EnvError` whose message is one line naming the variable;
settings turns that into a clean exit instead of a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class EnvError(ValueError):
    """A configuration variable is missing or malformed."""


class Env:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def text(self, name: str, default: str = "") -> str:
        value = self.raw(name)
        return default if value is None else value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.environ.get(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise EnvError(f"{name} must be a boolean (1/0, true/false, yes/no, on/off), got {value!r}")

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise EnvError(f"{name} must be an integer, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise EnvError(f"{name} must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise EnvError(f"{name} must be at most {maximum}, got {number}")
        return number

    def port(self, name: str, default: int) -> int:
        return self.integer(name, default, minimum=1, maximum=65535)

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise EnvError(f"{name} must be a number, got {value!r}") from None
        if number < minimum:
            raise EnvError(f"{name} must be at least {minimum}, got {number}")
        return number

    def items(self, name: str, default: list[str]) -> list[str]:
        value = self.raw(name)
        if value is None:
            return list(default)
        return [item.strip() for item in value.split(",") if item.strip()]

    def url(self, name: str, schemes: tuple[str, ...], default: str | None = None) -> str | None:
        """A URL whose scheme is one of ``schemes`` and which names a host (or a socket path)."""
        value = self.raw(name)
        if value is None:
            return default
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError on a malformed port
        except ValueError:
            raise EnvError(f"{name} is not a valid URL") from None
        if parts.scheme not in schemes:
            wanted = ", ".join(f"{s}://" for s in schemes)
            raise EnvError(
                f"{name} must start with one of {wanted} (got {parts.scheme or 'no'} scheme)"
            )
        if not parts.hostname and not parts.path.strip("/"):
            raise EnvError(f"{name} must name a host")
        return value


def describe_url(url: str) -> str:
    """The URL without its password, for log lines."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"
