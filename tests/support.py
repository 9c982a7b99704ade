"""Helpers for Django-side tests: named actors' clients and websocket clients."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any, TypeVar

from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ObjectDoesNotExist
from django.test import Client
from django.utils import timezone

from chatsite.asgi import application
from conversations import quota
from conversations.models import Conversation, UsageAccount, User

PASSWORD = "correct horse battery staple"
_T = TypeVar("_T")
SIM_KEY = "sk-test-0123456789abcdef"
TRUSTED_ORIGIN = "http://localhost:8000"


def make_user(username: str, **extra: object) -> User:
    return User.objects.create_user(username, password=PASSWORD, **extra)  # type: ignore[arg-type]


def usage_account(
    user: User, *, day_used: int = 0, month_used: int = 0, days_ago: int = 0
) -> UsageAccount:
    """Give ``user`` running totals as if the calls had been made: ``day_used`` tokens on the
    day ``days_ago`` days back (0: today), ``month_used`` this month."""
    periods = quota.periods_at(timezone.now())
    account, _ = UsageAccount.objects.update_or_create(
        user=user,
        defaults={
            "day_start": quota.periods_at(timezone.now() - timedelta(days=days_ago)).day,
            "day_used": day_used,
            "month_start": periods.month,
            "month_used": month_used,
            "minute_start": periods.minute,
            "minute_used": 0,
            "streams": 0,
        },
    )
    return account


def downloaded(response: Any) -> str:
    """A response's body as text, streamed or not: a streamed one (the CSV exports) read as
    the ASGI server reads it, its parts in turn from its async iterator."""
    if not response.streaming:
        return str(response.content.decode())

    async def read() -> bytes:
        return b"".join([part async for part in response.streaming_content])

    return async_to_sync(read)().decode()


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


class Socket:
    """A websocket client of the conversation endpoint, with helpers to read frames."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator
        self.frames: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any]) -> None:
        await self.communicator.send_json_to(frame)

    async def send_raw(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        frame = await self.communicator.receive_json_from(timeout=timeout)
        self.frames.append(frame)
        return frame

    async def until(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(
                    f"no matching frame; got {[f['type'] for f in self.frames][-20:]}"
                )
            frame = await self.receive(timeout=left)
            if predicate(frame):
                return frame

    async def until_type(self, kind: str, timeout: float = 20) -> dict[str, Any]:
        return await self.until(lambda f: f["type"] == kind, timeout)

    async def until_reply_ends(self, timeout: float = 30) -> dict[str, Any]:
        return await self.until(lambda f: f["type"] in ("reply.completed", "reply.failed"), timeout)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]

    async def close(self) -> None:
        await self.communicator.disconnect()


async def open_socket(
    user: User, conversation: Conversation, link: str | None = None, client: Client | None = None
) -> Socket:
    """A socket of ``user`` (signed in by ``client``'s session, a new one by default)."""
    client = client or await sync_to_async(client_for)(user)
    query = f"?link={link}" if link else ""
    communicator = WebsocketCommunicator(
        application,
        f"/ws/conversations/{conversation.id}/{query}",
        headers=[
            (b"origin", TRUSTED_ORIGIN.encode()),
            (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
        ],
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    socket = Socket(communicator)
    assert (await socket.receive())["type"] == "ready"
    return socket


async def open_account_socket(user: User | None, client: Client | None = None) -> Socket:
    """The socket of ``user``'s page on no conversation (``/ws/account/``), once it is ready
    (signed in by ``client``'s session, a new one by default); None: a visitor not signed in,
    whose socket is not read."""
    headers = [(b"origin", TRUSTED_ORIGIN.encode())]
    if user is not None:
        client = client or await sync_to_async(client_for)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    communicator = WebsocketCommunicator(application, "/ws/account/", headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    socket = Socket(communicator)
    if user is not None:
        assert (await socket.receive())["type"] == "ready"
    return socket


def reply_text(frames: list[dict[str, Any]], reply_id: str) -> str:
    """The reply as a client rebuilds it from snapshots and deltas, checking continuity."""
    text = ""
    seq: int | None = None
    for frame in frames:
        if frame.get("reply_id") != reply_id:
            continue
        if frame["type"] == "reply.snapshot":
            text = text + frame["content"] if frame["mode"] == "append" else frame["content"]
            seq = frame["seq"]
        elif frame["type"] == "reply.started":
            seq = frame["seq"]
        elif frame["type"] == "reply.delta":
            assert seq is not None and frame["seq"] == seq + 1, (
                f"gap or duplicate: {seq} -> {frame['seq']}"
            )
            seq = frame["seq"]
            text += frame.get("content", "")
    return text


def title_context(conversation: Conversation, first_user_text: str) -> Any:
    """What a first reply hands the title call of ``conversation``."""
    from conversations import actions

    return actions.GenerationContext(
        reply_id=uuid.uuid4(),
        conversation_id=conversation.pk,
        user_id=conversation.owner_id,
        model=conversation.model,
        messages=[],
        params={},
        record_id=None,
        prefix=False,
        content="",
        reasoning="",
        logprobs=[],
        tool_calls=[],
        seq=0,
        needs_title=True,
        first_user_text=first_user_text,
    )


class _FormReader(HTMLParser):
    """The values a browser would post from the page's forms, as it stands."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("submit", "button", "file", "image"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            default = "on" if kind in ("checkbox", "radio") else ""
            self.values.setdefault(name, []).append(a.get("value", default))
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = [""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea][-1] += data


def admin_form(client: Client, page: str, **changes: Any) -> dict[str, Any]:
    """The admin form at ``page`` as a browser would post it unchanged, with ``changes`` on
    top (None: the field left out, as an unticked checkbox)."""
    reader = _FormReader()
    response = client.get(page)
    assert response.status_code == 200, page
    reader.feed(response.content.decode())
    form: dict[str, Any] = {
        # A textarea's first newline is not part of its value.
        k: (v[0].removeprefix("\n") if len(v) == 1 else v)
        for k, v in reader.values.items()
        if k not in ("csrfmiddlewaretoken",)
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


class _SharedMessagesReader(HTMLParser):
    """The messages of a share link's page as its script reads them (static/js/shared.js,
    serverMessages): each article's data attributes, its author and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []
        self._into: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "article" and "data-id" in a:
            self.messages.append(
                {
                    "id": a["data-id"],
                    "parent_id": a.get("data-parent-id") or None,
                    "role": a["data-role"],
                    "author": "",
                    "content": "",
                    "status": a["data-status"],
                    "finish_reason": a.get("data-finish-reason", ""),
                    "seq": int(a["data-seq"]),
                    "created_at": a["data-created-at"],
                }
            )
        elif self.messages and tag == "h2" and a.get("class") == "author":
            self._into = "author"
        elif self.messages and tag == "div" and a.get("class") == "text":
            self._into = "content"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h2", "div"):
            self._into = None

    def handle_data(self, data: str) -> None:
        if self._into:
            self.messages[-1][self._into] += data


def shared_messages(html: str) -> list[dict[str, Any]]:
    """The messages a share link's page (``html``) holds, as its script reads them."""
    reader = _SharedMessagesReader()
    reader.feed(html)
    reader.close()
    return reader.messages


async def closed_code(socket: Socket) -> int:
    """The code the server closes ``socket`` with (what it sends before is skipped)."""
    message = await socket.communicator.receive_output(timeout=10)
    while message["type"] != "websocket.close":
        message = await socket.communicator.receive_output(timeout=10)
    return int(message["code"])


def eventually(check: Callable[[], _T], *, within: float = 10.0) -> _T:
    """What ``check`` returns once it passes, tried again until then (at most ``within``
    seconds): for what a worker writes just after its answer, such as an API call's
    settlement, which commits right after the answer's last byte has gone out."""
    deadline = time.monotonic() + within
    while True:
        try:
            return check()
        except (AssertionError, ObjectDoesNotExist, ValueError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.02)
