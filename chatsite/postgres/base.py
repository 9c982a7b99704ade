"""Django's PostgreSQL backend, whose pool never hands out a connection the server has closed
(see the package's docstring). Django's own pool check (``CONN_HEALTH_CHECKS``) costs a round
trip per unit of work, and waits a second or more after each dead connection it meets."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool

from chatsite.postgres import server_has_spoken

# More than one in a row is the pool's check (below) racing another restart: give up then.
ATTEMPTS = 3


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        for _ in range(ATTEMPTS - 1):
            connection = super().get_new_connection(conn_params)
            if self.pool is None or not server_has_spoken(connection):
                return connection
            try:
                ConnectionPool.check_connection(connection)
            except Exception:
                # Broken: the pool discards it as it is returned; the rest are checked at once.
                self.pool.putconn(connection)
                self.pool.check()
                continue
            return connection  # the server had said something else (a notice)
        return super().get_new_connection(conn_params)
