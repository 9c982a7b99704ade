"""A real TCP proxy between the app and PostgreSQL, for tests that cut or stall the database for
one process (its pools connect through the proxy; the test's own sessions do not), lose the
answer to one statement, or stall the connection running one statement.

A stalled connection is a blackholed route: nothing it sends or is sent is forwarded, and its
sockets stay open (no FIN, no RST). Since the proxy's kernel acknowledges every byte, TCP
keepalives and ``tcp_user_timeout`` see a healthy connection, as behind a load balancer that
has lost its server: only a client-side deadline notices.

It reads PostgreSQL's wire protocol just enough to frame messages: which statement a client
runs (a simple ``Query``, or a ``Bind`` of a statement it prepared with ``Parse``), and where the
server's answer to it ends (``ReadyForQuery``, sent once an autocommit statement has committed).
An ``SSLRequest`` is answered "no" by the proxy itself, so the rest is readable.
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.servers import free_port

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


@dataclass
class _Loss:
    """The answer to the next statement whose SQL holds ``marker`` is dropped, and its
    connection cut once the server has said it is ready again (the statement committed)."""

    marker: str
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class _Stall:
    """The connection running the next statement whose SQL holds ``marker`` stalls before the
    server is asked to run it (a ``Parse`` of it goes through), until the proxy is restored."""

    marker: str
    done: threading.Event = field(default_factory=threading.Event)


class _Link:
    """One client connection and its server connection."""

    def __init__(self, proxy: PgProxy, client: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = client
        self.server: asyncio.StreamWriter | None = None
        self.statements: dict[str, str] = {}  # prepared statement name -> its SQL
        self.losing: _Loss | None = None
        # While stalled, what either side sends is held here (to the server, to the client).
        self.held: list[tuple[asyncio.StreamWriter, bytes]] | None = None

    def close(self) -> None:
        for writer in (self.client, self.server):
            if writer is not None and not writer.is_closing():
                writer.transport.abort()

    def _runs(self, sql: str) -> None:
        """The client is running ``sql``: lose its answer if a loss is waiting for it, stall
        the connection if a stall is."""
        for loss in list(self.proxy.losses):
            if loss.marker in sql:
                self.proxy.losses.remove(loss)
                self.losing = loss
                return
        for stall in list(self.proxy.stalls):
            if stall.marker in sql:
                self.proxy.stalls.remove(stall)
                self.held = []
                stall.done.set()
                return

    def forward(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if self.held is not None:
            self.held.append((writer, data))
        else:
            writer.write(data)

    def release(self) -> None:
        """The route is back: what was held is delivered, late."""
        held, self.held = self.held or [], None
        for writer, data in held:
            if not writer.is_closing():
                writer.write(data)

    async def client_to_server(self, reader: asyncio.StreamReader) -> None:
        # The startup: untyped messages, an SSL or GSS request answered "no" here.
        while True:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!ii", head)
            body = await reader.readexactly(length - 8)
            if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                self.client.write(b"N")
                continue
            break
        host, port = self.proxy.target
        server_reader, self.server = await asyncio.open_connection(host, port)
        self.proxy.spawn(self.server_to_client(server_reader))
        self.server.write(head + body)
        while True:
            kind = await reader.readexactly(1)
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            body = await reader.readexactly(length - 4)
            if kind == b"P":  # Parse: name, query
                name, _, rest = body.partition(b"\0")
                query = rest.partition(b"\0")[0]
                self.statements[name.decode()] = query.decode()
            elif kind == b"B":  # Bind: portal, statement
                statement = body.split(b"\0", 2)[1].decode()
                self._runs(self.statements.get(statement, ""))
            elif kind == b"Q":
                self._runs(body.rstrip(b"\0").decode())
            self.forward(self.server, kind + struct.pack("!i", length) + body)

    async def server_to_client(self, reader: asyncio.StreamReader) -> None:
        try:
            await self._answers(reader)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.close()

    async def _answers(self, reader: asyncio.StreamReader) -> None:
        while True:
            kind = await reader.readexactly(1)
            head = await reader.readexactly(4)
            (length,) = struct.unpack("!i", head)
            body = await reader.readexactly(length - 4)
            loss = self.losing
            if loss is None:
                self.forward(self.client, kind + head + body)
                continue
            if kind == b"Z":  # ready again: the statement has committed, its answer dropped
                loss.done.set()
                return


class PgProxy:
    """Listens on loopback (``port``) and forwards to PostgreSQL at ``target``, on a thread of
    its own (usable from sync and async tests alike)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.losses: list[_Loss] = []
        self.stalls: list[_Stall] = []
        self.refusing = False
        self.links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # -- what tests call (from any thread) -------------------------------------------------

    def lose_answer_once(self, marker: str) -> threading.Event:
        """The next statement whose SQL holds ``marker`` runs and commits, and its answer never
        comes back: its connection is cut instead. The event is set once that has happened."""
        loss = _Loss(marker)
        self._call(lambda: self.losses.append(loss))
        return loss.done

    def stall_once(self, marker: str) -> threading.Event:
        """The next statement whose SQL holds ``marker`` is not run (held before the server
        gets its ``Bind`` or ``Query``), and its connection goes silent both ways with its sockets left open, until :meth:`restore`
        (other connections, and new ones, are served). The event is set once it has stalled."""
        stall = _Stall(marker)
        self._call(lambda: self.stalls.append(stall))
        return stall.done

    def cut(self) -> None:
        """Refuse new connections and cut the open ones (PostgreSQL unreachable)."""

        def cut() -> None:
            self.refusing = True
            for link in list(self.links):
                link.close()

        self._call(cut)

    def restore(self) -> None:
        """End a cut (new connections are served again) and the stalls (what a stalled
        connection still open sent, or was sent, is delivered)."""

        def restore() -> None:
            self.refusing = False
            for link in list(self.links):
                link.release()

        self._call(restore)

    # -- the proxy -------------------------------------------------------------------------

    def _call(self, function: Callable[[], object]) -> None:
        """Run ``function`` on the proxy's loop, and wait for it."""
        done = threading.Event()

        def run() -> None:
            try:
                function()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            writer.transport.abort()
            return
        link = _Link(self, writer)
        self.links.add(link)
        try:
            await link.client_to_server(reader)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            link.close()
            self.links.discard(link)

    def start(self) -> None:
        self._thread.start()

        async def listen() -> None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

        asyncio.run_coroutine_threadsafe(listen(), self._loop).result(5)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for link in list(self.links):
                link.close()
            for task in list(self._tasks):
                task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


@contextmanager
def pg_proxy(host: str, port: int) -> Iterator[PgProxy]:
    proxy = PgProxy((host, port))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
