"""Where async code runs its ORM work.

Channels' ``database_sync_to_async`` defaults to one thread per process that every consumer
shares; under hundreds of streams that thread is the bottleneck. Our units of ORM work run on a
small pool of their own instead: persistent threads (so pooled connections are not lost with
threads that come and go with event loops), each call closing its connection afterwards
(``CONN_MAX_AGE=0`` returns it to Django's pool).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async

P = ParamSpec("P")
R = TypeVar("R")

_EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="orm")


def in_db_thread(function: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """``function`` as a coroutine function running on an ORM thread."""
    wrapped: Any = database_sync_to_async(function, thread_sensitive=False, executor=_EXECUTOR)
    return wrapped  # type: ignore[no-any-return]
