"""The rate limit on share links for visitors who are not signed in.

Each client address (``chatsite.addresses``; an IPv6 address's /64 network) may make ``ANONYMOUS_LINK_REQUESTS_PER_MINUTE``
requests a minute to share links: a link's page, its ``messages.json`` and its socket's
handshake each count one, whether the token leads anywhere or not (unknown, revoked and
expired tokens too: guessing is slowed as much as reading a transcript again and again).
Signed-in accounts are not counted. Past the limit a request is refused until the minute
ends, before its token is even looked up.

The minutes are the clock's (as the per-minute request limit of ``quota``), counted in
PostgreSQL so that every worker shares them: one row per address and minute, incremented in
one statement.
"""

from __future__ import annotations

import logging
import math
import time

from django.conf import settings
from django.db import connection

from chatsite.addresses import counted_as
from conversations.errors import RateLimited

logger = logging.getLogger("conversations.link_limits")

WINDOW_SECONDS = 60

# The row of the address's current minute (the start of the minute by PostgreSQL's clock: the
# same for every worker) gains one request, and says how many it has and how long is left.
_COUNT_SQL = """
    INSERT INTO conversations_linkrequests AS r (window_start, address, requests)
    VALUES (
        to_timestamp(floor(extract(epoch FROM now()) / %(window)s) * %(window)s), %(address)s, 1
    )
    ON CONFLICT (window_start, address) DO UPDATE SET requests = r.requests + 1
    RETURNING r.requests, extract(epoch FROM r.window_start - now()) + %(window)s
"""

# Ended minutes are of no use. The primary key leads with window_start: a range of its index.
_PRUNE_SQL = """
    DELETE FROM conversations_linkrequests
    WHERE window_start < to_timestamp(floor(extract(epoch FROM now()) / %(window)s) * %(window)s)
"""

# The last minute (of this process's clock) in which this process pruned. Threads racing here
# at most prune twice, and workers each prune once a minute: both harmless, and the table
# never holds more than about two minutes of addresses.
_pruned_in = -1


def count_request(address: str) -> None:
    """Count one request to a share link from ``address`` by someone not signed in;
    :class:`RateLimited` (with ``retry_after``, the seconds left of the minute) past the limit."""
    limit = settings.ANONYMOUS_LINK_REQUESTS_PER_MINUTE
    address = counted_as(address)  # an IPv6 client's whole /64
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SQL, {"address": address, "window": WINDOW_SECONDS})
        requests, seconds_left = cursor.fetchone()
    _prune_once_a_minute()
    if requests <= limit:
        return
    if requests == limit + 1:
        # Once a minute an address is refused: the address only, never a path (it holds a token).
        logger.warning(
            "share links: %s made more than %d requests this minute; refused until it ends",
            address,
            limit,
        )
    wait = max(1, math.ceil(seconds_left))
    raise RateLimited(
        f"Too many requests for shared conversations from your address. Try again in {wait} "
        f"second{'s' if wait != 1 else ''}.",
        retry_after=wait,
    )


def _prune_once_a_minute() -> None:
    global _pruned_in
    minute = int(time.time() // WINDOW_SECONDS)
    if minute == _pruned_in:
        return
    _pruned_in = minute
    with connection.cursor() as cursor:
        cursor.execute(_PRUNE_SQL, {"window": WINDOW_SECONDS})
