"""A line daphne writes itself (its timeout checks, Twisted's reads and writes) runs in an event
loop callback, in whatever context the callback was scheduled from: often a request's, since a
request's task writing to its socket schedules the reactor's next calls. Those lines were
tagged with that request's id and user (``daphne.server`` warnings about anonymous sockets read
``req=<alice's request> user=2``). Now a line the loop writes outside any task carries none,
and each connection's task starts untagged; a request's own lines keep its ids."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

from django.conf import settings

from chatsite import logs


def capture() -> tuple[logging.Handler, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logging.Formatter(settings.LOGGING["formatters"]["line"]["format"]))
    return handler, out


def test_a_callback_scheduled_by_a_request_logs_without_its_ids() -> None:
    handler, out = capture()
    daphne = logging.getLogger("daphne.server")
    ours = logging.getLogger("chatsite.request")
    for logger in (daphne, ours):
        logger.addHandler(handler)

    async def alices_request() -> None:
        logs.bind("alices-request", 2)
        ours.warning("alice's own line")
        done = asyncio.Event()

        def reactor_callback() -> None:  # as Twisted's reactor runs on asyncio: call_soon/later
            daphne.warning("Application instance for connection ['127.0.0.1', 1] took too long")
            done.set()

        asyncio.get_running_loop().call_soon(reactor_callback)
        await done.wait()
        await asyncio.to_thread(ours.warning, "alice's line from a thread of her request")

    try:
        asyncio.run(alices_request())
    finally:
        for logger in (daphne, ours):
            logger.removeHandler(handler)
    lines = out.getvalue().splitlines()
    assert "req=alices-request user=2 alice's own line" in lines[0]
    assert "daphne.server req=- user=- Application instance" in lines[1], lines
    assert "req=alices-request user=2 alice's line from a thread" in lines[2]


def test_each_connection_starts_untagged() -> None:
    seen: list[tuple[str, str]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((logs.request_id_var.get(), logs.user_id_var.get()))

    async def callback_in_alices_context() -> None:
        logs.bind("alices-request", 2)
        # daphne creates the next connection's task from a callback in this context
        await asyncio.ensure_future(logs.untag_each_connection(app)({}, None, None))

    asyncio.run(callback_in_alices_context())
    assert seen == [("-", "-")]
