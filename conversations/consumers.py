"""The conversation websocket, and the account's socket on no conversation (protocol in README
"Websocket protocol").

Thin: parse a frame, call one action (which authorizes), start a generation task, answer.
It never awaits a stream: generation runs in tasks of its own, and the socket only relays
their events, keeping each reply's sequence numbers continuous (no gap, no duplicate).

A page open on no conversation (the welcome page, or one whose conversation was deleted) has
the account's socket (:class:`AccountConsumer`): it only hears what the account's lists of
conversations show, so that they follow the account's other tabs without a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from importlib import import_module
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs

import psycopg
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.db import Error as DatabaseError
from django.http import HttpRequest
from django.utils import timezone

from chatsite import logs
from chatsite.addresses import counted_as, scope_address
from conversations import access, actions, link_limits, sharing, text
from conversations.asyncdb import in_db_thread
from conversations.errors import (
    ChatError,
    InternalError,
    InvalidParameter,
    PermissionDenied,
    RateLimited,
    ShuttingDown,
)
from conversations.frames import (
    CALL,
    MessageFrame,
    account_frame,
    account_frames,
    encode,
    link_frame,
    message_frame,
)
from conversations.generation import (
    SNAPSHOT_TIMEOUT,
    account_group,
    charges_of_reply,
    get_service,
    group_name,
    listed_event,
)
from conversations.models import Conversation, Message, ShareLink, User
from conversations.pgpool import DatabaseUnavailable

logger = logging.getLogger("conversations.consumers")
MAX_FRAME_CHARS = 200_000
# The largest sequence number a reply can have (its row's column).
MAX_SEQ = 2**31 - 1
SESSION_STORE = import_module(settings.SESSION_ENGINE).SessionStore
# A resync's read of the stored reply (the socket's own, on a gap, or when no task answers), when
# the database cannot be reached, is tried again after each of these pauses (each try itself
# waits up to the pool's 5 s); then the socket is told to sync the reply again (``_sync_again``).
SYNC_READ_RETRIES = (0.5, 1.0)
# How long a socket told to sync a reply again waits before it does (the frame's retry_after).
SYNC_AGAIN_AFTER = 2
# The close code of a socket whose process is shutting down (``_close_for_restart``): 4503, as
# the other codes of ours follow HTTP's (autobahn sends no 1012, Service Restart).
RESTART_CLOSE_CODE = 4503


def _echoed(request: dict[str, Any]) -> dict[str, str]:
    """What an error frame repeats of the frame it answers, so that the client can match the
    two: its type and client id, as text UTF-8 can carry (a lone surrogate, refused in the
    frame, is escaped here: unescaped, it could not be sent, and the socket would close) and
    no longer than a valid one (the id's bound, a type name's)."""
    echoed = {}
    if isinstance(request.get("type"), str):
        echoed["request_type"] = text.utf8_safe(request["type"][:40])
    if isinstance(request.get("client_id"), str):
        echoed["client_id"] = text.utf8_safe(request["client_id"][: actions.MAX_CLIENT_ID + 1])
    return echoed


def _load_conversation(
    user: Any, conversation_id: uuid.UUID, link_token: str | None = None
) -> tuple[Conversation, ShareLink | None] | None:
    """The conversation, and the share link when this socket sees it only through one."""
    own = access.own_conversation(user, conversation_id)  # most sockets: one fixed statement
    if own is not None:
        return own, None
    try:
        return access.access_conversation(user, conversation_id), None
    except Conversation.DoesNotExist:
        pass
    link = access.viewing_link(user, conversation_id, link_token)
    return None if link is None else (link.conversation, link)


def _session_user(session_key: str | None) -> Any:
    """Whom the session signs in now: AnonymousUser once it is signed out, expired, or ended
    by a password change, and for an account deactivated or deleted since (Django's rules)."""
    request = HttpRequest()
    request.session = SESSION_STORE(session_key)
    return auth.get_user(request)


def _session_expires_at(session_key: str | None) -> datetime | None:
    """When the session stops signing its account in by itself (its expiry date), for a
    session engine that stores one (the database's); None otherwise."""
    model = getattr(SESSION_STORE, "get_model_class", None)
    if session_key is None or model is None:
        return None
    found: datetime | None = (
        model()
        .objects.filter(session_key=session_key)
        .values_list("expire_date", flat=True)
        .first()
    )
    return found


# A timer is set no further ahead than this (then re-armed): a clock stepped meanwhile is
# caught up with.
SESSION_TIMER_MAX_SECONDS = 6 * 3600


class SessionExpiry:
    """Re-checks a signed-in socket's session when it expires. Nothing announces an expiry, as
    a sign-out or a password change is announced (``account.access_changed``): without this, a
    tab left open kept sending messages, and spending the account's tokens, on a session no
    page would accept. ``recheck`` closes the socket if the session no longer signs the account
    in, and says whether it still does (its new expiry is then waited for)."""

    def __init__(
        self, service: Any, session_key: str | None, recheck: Callable[[], Awaitable[bool]]
    ):
        self.service = service
        self.session_key = session_key
        self.recheck = recheck
        self.handle: asyncio.TimerHandle | None = None
        self.stopped = False

    async def start(self) -> None:
        expires = await in_db_thread(_session_expires_at)(self.session_key)
        if expires is None or self.stopped:
            return
        # A moment after: the session is read as expired once its date has passed.
        delay = max(0.0, (expires - timezone.now()).total_seconds()) + 0.2
        self.handle = asyncio.get_running_loop().call_later(
            min(delay, SESSION_TIMER_MAX_SECONDS), self._due
        )

    def _due(self) -> None:
        self.handle = None
        self.service.spawn(self._check())

    async def _check(self) -> None:
        if not self.stopped and await self.recheck():
            await self.start()

    def stop(self) -> None:
        self.stopped = True
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


def _session_key(scope: dict[str, Any]) -> str | None:
    session = scope.get("session")
    return session.session_key if session is not None else None


class Place(NamedTuple):
    """Whose place a socket takes among the process's sockets (``SocketPlaces``)."""

    holder: str
    limit: int  # how many sockets the holder may have open in one process
    named: str  # the holder, as a refusal names it


def _place_of(user: Any, scope: dict[str, Any]) -> Place:
    """A signed-in account's place, or an anonymous viewer's (of a public link): its client
    address's (an IPv6 address's /64), which daphne takes from X-Forwarded-For behind the proxy
    (``--proxy-headers``)."""
    if user is not None and user.is_authenticated:
        return Place(f"account:{user.pk}", settings.WEBSOCKETS_PER_ACCOUNT, "your account")
    return Place(
        f"address:{counted_as(scope_address(scope))}",
        settings.WEBSOCKETS_PER_ANONYMOUS_ADDRESS,
        "your address",
    )


# Why a socket that may no longer view its conversation would again if it signed in: its
# session ended while the account is usable (signed out, rather than an account deactivated
# or deleted), or it is anonymous on a live link now that the admin allows no public links.
SignInWouldHelp = Literal["signed_out", "links_need_sign_in"] | None


def _may_still_view(
    user: Any, session_key: str | None, conversation_id: uuid.UUID, link_token: str | None
) -> tuple[tuple[Conversation, ShareLink | None] | None, SignInWouldHelp]:
    """As :func:`_load_conversation`, for the socket's session as it is now, not as the
    socket's scope cached it; and, when it may not, whether signing in would let it."""
    signed_out = False
    if user is not None and user.is_authenticated:
        now = _session_user(session_key)
        if now.pk != user.pk:
            signed_out = User.objects.filter(pk=user.pk, is_active=True).exists()
            now = AnonymousUser()
        user = now
    loaded = _load_conversation(user, conversation_id, link_token)
    if loaded is not None:
        return loaded, None
    if signed_out:
        return None, "signed_out"
    if access.link_needs_sign_in(user, conversation_id, link_token):
        return None, "links_need_sign_in"
    return None, None


def _ready_state(conversation_id: uuid.UUID) -> tuple[list[Message], datetime | None]:
    """The replies in progress and when the newest message was created (a page rendered
    before it does not show it: the client then re-reads the page)."""
    active = list(
        Message.objects.filter(conversation_id=conversation_id, status__in=actions.ACTIVE).only(
            "id", "generation_channel", "seq", "status"
        )
    )
    newest = (
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    return active, newest


def _turn_frames(turn: actions.Turn) -> list[MessageFrame]:
    return [message_frame(m) for m in turn.new_messages]


def _run_action(
    action: Callable[..., actions.Turn], *args: Any, **kwargs: Any
) -> tuple[actions.Turn, list[MessageFrame]]:
    """The action and the frames of its rows: one trip to an ORM thread."""
    turn = action(*args, **kwargs)
    return turn, _turn_frames(turn)


_ENDS = ("reply.completed", "reply.failed")


class ClientFrame(NamedTuple):
    handler: str  # the consumer's method that answers it
    fields: tuple[str, ...]
    # A share link's viewer sends it rarely, so its link is checked anew first; not for a
    # ping, which an idle page sends every half minute (the link's expiry timer and its
    # revocation close the socket without it).
    rechecks_link: bool = True


# The client frames (README "Websocket protocol"): the method answering each, and the fields it
# may carry besides its type. Any other field is refused naming it rather than ignored: a
# misspelt ``parent_id`` would post under the newest message, a misspelt ``params`` drop the
# parameters, without a word.
CLIENT_FRAMES = {
    "message.send": ClientFrame("on_send", ("client_id", "content", "parent_id", "params")),
    "message.edit": ClientFrame("on_edit", ("message_id", "content", "client_id", "params")),
    "reply.regenerate": ClientFrame("on_regenerate", ("reply_id", "client_id", "params")),
    "reply.continue": ClientFrame("on_continue", ("reply_id",)),
    "reply.cancel": ClientFrame("on_cancel", ("reply_id",)),
    "tool.answer": ClientFrame(
        "on_tool_answer", ("reply_id", "tool_call_id", "content", "client_id")
    ),
    "reply.sync": ClientFrame("on_sync", ("reply_id", "after_seq")),
    "ping": ClientFrame("on_ping", (), rechecks_link=False),
}

# Events the service hands a socket directly run at once (they are cheap and never wait on the
# database); any other goes through the socket's channel, to run in turn as a layer event would.
_DIRECT_HANDLERS = {
    "reply.started": "reply_started",
    "reply.delta": "reply_delta",
    "reply.completed": "reply_completed",
    "reply.failed": "reply_failed",
    "message.created": "message_created",
    "conversation.updated": "conversation_updated",
    "conversation.settings": "conversation_settings",
    "conversation.listed": "conversation_listed",
    "conversation.deleted": "conversation_deleted",
    "shared.listed": "shared_listed",
    "shared.unlisted": "shared_unlisted",
    "account.batch": "account_batch",
    "account.updated": "account_updated",
    "account.access_changed": "account_access_changed",
}


def _server_send(send: Callable[..., Any]) -> Callable[..., Any]:
    """The server's own send under Channels' session middleware, whose wrapper acts only on
    HTTP responses: every delta to every socket would otherwise pass through it."""
    real: Callable[..., Any] = getattr(getattr(send, "__self__", None), "real_send", send)
    return real


class ConversationConsumer(AsyncWebsocketConsumer):
    conversation_id: uuid.UUID
    group: str
    # A socket that sees the conversation only through a share link: read-only, and closed
    # when the link expires (``link_expiry`` fires then).
    link_only: bool = False
    link_expires_at: datetime | None = None
    link_expiry: asyncio.TimerHandle | None = None
    left: bool = False  # told why and closed: nothing more is sent
    # Whose place among the process's sockets this one holds (``SocketPlaces``) until it closes.
    place: str | None = None
    # The account's group (``account_group``), joined by a socket of a signed-in account on a
    # conversation it sees by right (not through a share link): its tab's list of conversations.
    account: str | None = None
    # While a change of who may see the conversation is being checked for this socket (the
    # check reads the database), what it would be sent waits here (None: no check pending):
    # a socket that may no longer see the conversation is sent nothing after it heard of the
    # change — not the next deltas of a reply, which are handed to it directly meanwhile.
    held: list[dict[str, Any]] | None = None
    rechecks_pending: int = 0
    ended: bool = False  # the socket is gone: its resyncs stop trying
    session_expiry: SessionExpiry | None = None  # a signed-in socket's

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' consumer, whose every end frees the socket's place and leaves its room:
        after ``disconnect``, and also where Channels calls no ``disconnect`` (connecting
        failed, or the channel layer failed under the socket, or the task was cancelled)."""
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            await _close_for_restart(self)
            raise
        finally:
            self.ended = True
            self._free_place()
            if self.link_expiry is not None:
                self.link_expiry.cancel()
            if self.session_expiry is not None:
                self.session_expiry.stop()
            if hasattr(self, "group"):
                with contextlib.suppress(Exception):
                    await self.service.leave(self.group, self)
            if self.account is not None:
                with contextlib.suppress(Exception):
                    await self.service.leave(self.account, self)

    async def restarting(self) -> None:
        """Its process is shutting down (``GenerationService.shutdown``): closed at once."""
        await _close_for_restart(self)

    async def connect(self) -> None:
        user = _opening(self)
        self.service = get_service()
        place = _place_of(user, self.scope)
        if not self.service.places.take(place.holder, place.limit):
            # Told why, and nothing else done: no query, no group.
            await self.accept()
            await self._leave(
                4429,
                "too_many_connections",
                f"Too many conversations are open from {place.named} on this server (at most "
                f"{place.limit}): close some, and this one connects again.",
            )
            return
        self.place = place.holder
        # A share link's viewers join read-only with ``?link=<token>``.
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.link_token: str | None = (query.get("link") or [None])[0]
        signed_in = user is not None and user.is_authenticated
        if not signed_in and self.link_token:
            # Counted as a request to a share link, before its token is looked up.
            try:
                await in_db_thread(link_limits.count_request)(scope_address(self.scope))
            except RateLimited as error:
                await self.accept()
                await self._leave(4429, error.code, error.message, **error.extra)
                return
        if not signed_in and not (
            self.link_token and await in_db_thread(access.may_open_links)(user)
        ):
            await self.refuse(4401)
            return
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        loaded = await in_db_thread(_load_conversation)(user, conversation_id, self.link_token)
        if loaded is None:
            await self.refuse(4404)
            return
        conversation, link = loaded
        self.conversation_id = conversation.id
        self.group = group_name(conversation.id)
        await self.service.ensure_started()
        self._view_through(link)
        # Per reply: the last sequence number this socket sent, and deltas held during a sync.
        self.sent_seq: dict[str, int] = {}
        self.syncing: dict[str, list[dict[str, Any]]] = {}
        # Per reply: the number of the sync under way (``start_sync``). Its task's answer names
        # it: an answer to an earlier sync, come late (the socket resynced again meanwhile, as
        # when frames of two tasks of one reply interleave), and an earlier sync's timer, are
        # not taken for the current sync's.
        self.sync_of: dict[str, int] = {}
        self.syncs_started = 0
        # Per reply: the newest call (ledger row) its frames have named (``frames.CALL``).
        self.call_of: dict[str, int] = {}
        # Events handed over before ``ready`` is sent wait here, then run in order.
        self.early: list[dict[str, Any]] | None = []
        await self.service.join(self.group, self)
        if signed_in:
            self.session_expiry = SessionExpiry(
                self.service, _session_key(self.scope), self.recheck_access
            )
        if signed_in and link is None:
            # Only the account's own sockets, which close when its session ends (signed out,
            # a new password, the account deactivated: ``recheck_access``).
            self.account = account_group(user.pk)
            await self.service.join(self.account, self)
        await self.accept()
        # Replies in progress are listed; the client syncs each from the sequence it holds.
        active, newest = await in_db_thread(_ready_state)(conversation.id)
        await self.send_frame(
            {
                "type": "ready",
                "conversation_id": str(conversation.id),
                "active_replies": [
                    {"reply_id": str(r.pk), "seq": r.seq, "status": r.status} for r in active
                ],
                "newest_message_at": newest.isoformat() if newest else None,
            }
        )
        while self.early:
            await self._handle(self.early.pop(0))
        self.early = None
        if self.session_expiry is not None:
            await self.session_expiry.start()

    async def refuse(self, code: int) -> None:
        """Refuse the session with a code the browser can read: a close before the accept
        reaches it as an HTTP 403, which it cannot tell from a network failure (and would
        retry for ever)."""
        self.left = True
        await self.accept()
        await self.close(code=code)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Channels' dispatch, minus its per-message connection clean-up on the shared ORM
        thread: every unit of ORM work here runs on an ORM thread that cleans up after itself,
        and deltas (most messages) touch no database at all. A cancellation the handler's
        awaits swallowed is raised after it (:func:`_raise_if_cancelled`)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
        _raise_if_cancelled()

    async def conversation_access_changed(self, event: dict[str, Any]) -> None:
        """Sharing changed (unshared, a link revoked or its expiry edited, collaborators
        edited): leave at once if this socket may no longer see the conversation. What it was
        to be sent since it heard of the change (``_handle`` began holding it) is sent only if
        it may stay."""
        try:
            if await self.recheck_access():
                # Still seen: whether it may post may have changed (made a collaborator, or
                # no longer one): the tab reads that again (README "access.changed").
                await self.send_frame({"type": "access.changed"})
        finally:
            await self._release_held()

    def _hold(self) -> None:
        self.rechecks_pending += 1
        if self.held is None:
            self.held = []

    async def _release_held(self) -> None:
        self.rechecks_pending = max(0, self.rechecks_pending - 1)
        if self.rechecks_pending > 0 or self.held is None:
            return
        frames, self.held = self.held, None
        for frame in frames:
            await self.send_frame(frame)

    async def recheck_access(self) -> bool:
        """Whether this socket may still see the conversation; if not, it is told so and
        closed: 4403, or 4401 where signing in would let it see it again, 4404 once deleted."""
        if self.left:
            return False
        session = self.scope.get("session")
        loaded, sign_in = await in_db_thread(_may_still_view)(
            self.scope.get("user"),
            session.session_key if session is not None else None,
            self.conversation_id,
            self.link_token,
        )
        if loaded is None:
            if await in_db_thread(access.conversation_gone)(self.conversation_id):
                await self._leave(4404, "not_found", "This conversation was deleted.")
            elif sign_in == "signed_out":
                await self._leave(4401, "access_revoked", "You are signed out.")
            elif sign_in == "links_need_sign_in":
                await self._leave(4401, "access_revoked", "Share links now need you to sign in.")
            else:
                await self._leave(
                    4403, "access_revoked", "This conversation is no longer shared with you."
                )
            return False
        self._view_through(loaded[1])
        return True

    def _view_through(self, link: ShareLink | None) -> None:
        """The socket sees the conversation through ``link`` (None: by its own right): until
        the link expires, when nothing announces anything, so a timer of its own re-checks."""
        self.link_only = link is not None
        self.link_expires_at = link.expires_at if link is not None else None
        if self.link_expiry is not None:
            self.link_expiry.cancel()
            self.link_expiry = None
        if self.link_expires_at is not None:
            delay = max(0.0, (self.link_expires_at - timezone.now()).total_seconds())
            self.link_expiry = asyncio.get_running_loop().call_later(delay, self._link_expired)

    def _link_expired(self) -> None:
        # Re-checked in the database (the expiry may have moved); a timer that fired a moment
        # early is set again for the moment left.
        self.link_expiry = None
        self.service.spawn(self.recheck_access())

    def _past_link_expiry(self) -> bool:
        return self.link_expires_at is not None and timezone.now() >= self.link_expires_at

    async def _leave(self, code: int, error_code: str, message: str, **extra: Any) -> None:
        if self.left:
            return
        self.left = True
        self._free_place()  # at once: the client may try again as soon as it is told
        if self.link_expiry is not None:
            self.link_expiry.cancel()
        if self.session_expiry is not None:
            self.session_expiry.stop()
        held, self.held = self.held or [], None
        if code in (4403, 4404):
            # Of what was held, what the account's lists show is still the account's to hear
            # (this conversation unlisted, say), unlike anything of the conversation; not once
            # its session ended (4401).
            for frame in held:
                if account_frame(frame) is not None:
                    await self.server_send({"type": "websocket.send", "text": encode(frame)})
        await self.server_send(
            {
                "type": "websocket.send",
                "text": encode({"type": "error", "code": error_code, "message": message, **extra}),
            }
        )
        await self.close(code=code)

    def _free_place(self) -> None:
        if self.place is not None:
            self.service.places.free(self.place)
            self.place = None

    async def disconnect(self, code: int) -> None:
        # What a socket's end undoes is undone once, in __call__, however it ends.
        logs.logger.info("WS %s closed %s", self.scope["path"], code)

    async def deliver(self, event: dict[str, Any]) -> None:
        """An event of the conversation, handed over by the service (read-only: it may be
        shared with other sockets)."""
        if self.early is not None:
            self.early.append(event)
            return
        await self._handle(event)

    async def _handle(self, event: dict[str, Any]) -> None:
        name = _DIRECT_HANDLERS.get(event["type"])
        if name is None:
            rechecks = event["type"] == "conversation.access_changed"
            if rechecks:
                self._hold()  # from now on, until its check says this socket may stay
            try:
                await self.channel_layer.send(self.channel_name, dict(event))
            except Exception:
                if rechecks:  # no check is coming: nothing stays held for it
                    await self._release_held()
                raise
            return
        await getattr(self, name)(event)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        if self.held is not None:
            self.held.append(frame)  # sent once its access is confirmed, or never
            return
        if self.link_only:
            if self._past_link_expiry():
                return  # the expiry timer closes it (a frame may beat the timer)
            shown = link_frame(frame)
            if shown is None:
                return
            frame = shown
        if self.left:
            return
        await self.server_send({"type": "websocket.send", "text": encode(frame)})

    async def send_error(self, error: ChatError, request: dict[str, Any] | None = None) -> None:
        frame: dict[str, Any] = {"type": "error", **error.as_dict()}
        if request is not None:
            frame.update(_echoed(request))
        await self.send_frame(frame)

    # -- client → server ---------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            await self.send_error(InvalidParameter("Frames must be JSON text.", param="frame"))
            return
        if len(text_data) > MAX_FRAME_CHARS:
            await self.send_error(
                InvalidParameter(
                    f"Frames may be at most {MAX_FRAME_CHARS} characters.", param="frame"
                )
            )
            return
        try:
            frame = text.loads(text_data)
        except ValueError:
            await self.send_error(InvalidParameter("The frame is not valid JSON.", param="frame"))
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self.send_error(
                InvalidParameter('A frame is an object with a "type".', param="type")
            )
            return
        try:
            text.check_parsed_json(text_data, frame, "frame")
        except InvalidParameter as error:
            await self.send_error(error, frame)
            return
        kind = CLIENT_FRAMES.get(frame["type"])
        if kind is None:
            await self.send_error(
                InvalidParameter(f"Unknown frame type {frame['type'][:40]!r}.", param="type"), frame
            )
            return
        unknown = sorted(set(frame) - {"type", *kind.fields})
        if unknown:
            await self.send_error(
                InvalidParameter(
                    f"Unknown field {unknown[0][:40]!r} in a {frame['type']} frame.",
                    param=unknown[0][:40],
                ),
                frame,
            )
            return
        if kind.rechecks_link and not await self._within_frame_budget(frame):
            return
        # A link's viewer acts rarely (it only reads): each time, its link is checked anew.
        if self.link_only and kind.rechecks_link:
            try:
                allowed = await self.recheck_access()
            except (DatabaseError, psycopg.Error):
                await self._link_unchecked(frame)
                return
            if not allowed:
                return
        try:
            await getattr(self, kind.handler)(frame)
        except ChatError as error:
            await self.send_error(error, frame)
        except Exception:
            logger.exception("frame %s failed", frame["type"][:40])
            await self.send_error(InternalError(), frame)

    async def _within_frame_budget(self, frame: dict[str, Any]) -> bool:
        """Whether the frame may be answered: its holder's sockets in this process share one
        :class:`~conversations.generation.FrameBudget`. If not, the sender is told how long to
        wait (a ``reply.sync`` names its reply: the page asks for it again then)."""
        if self.place is None:
            return True
        wait = self.service.places.frames_wait(self.place)
        if not wait:
            return True
        seconds = max(1, math.ceil(wait))
        whose = "your account" if self.place.startswith("account:") else "your address"
        about: dict[str, Any] = {}
        reply_id = frame.get("reply_id")
        if frame["type"] == "reply.sync" and isinstance(reply_id, str) and len(reply_id) <= 64:
            about["reply_id"] = reply_id
        await self.send_error(
            RateLimited(
                f"Too many frames from {whose}: wait {seconds} second"
                f"{'s' if seconds != 1 else ''} before sending another.",
                retry_after=seconds,
                **about,
            ),
            frame,
        )
        return False

    async def _link_unchecked(self, frame: dict[str, Any]) -> None:
        """A link's viewer's frame whose link could not be checked (the database out of
        reach): nothing is done, and the viewer is told so; a ``reply.sync`` as when its read
        of the reply fails (``_sync_again``: the page syncs it again shortly)."""
        reply_id = frame.get("reply_id")
        if frame["type"] == "reply.sync" and isinstance(reply_id, str) and len(reply_id) <= 64:
            await self._sync_again(reply_id)
        else:
            await self.send_error(DatabaseUnavailable(), frame)

    def _check_not_link_only(self) -> None:
        if self.link_only:
            raise PermissionDenied("This conversation is shared with you by a read-only link.")

    async def _run_turn(self, action: Callable[..., actions.Turn], **kwargs: Any) -> None:
        self._check_not_link_only()
        if not self.service.accepting:
            raise ShuttingDown()
        # The action runs in a task of its own, which this socket's cancellation does not reach
        # (the socket closed, or daphne cancelling its sockets on SIGTERM): the action commits
        # all the same, and a reply it committed pending must get its task, or it would stay
        # pending for ever (a retry of the frame is a duplicate, which starts nothing). A
        # shutdown waits for it (``GenerationService.turns``), then for its reply.
        acting = self.service.spawn(
            in_db_thread(_run_action)(
                action,
                self.scope["user"],
                self.conversation_id,
                channel=self.service.channel,
                **kwargs,
            )
        )
        turn_taken = self.service.turn_under_way()
        try:
            try:
                turn, frames = await asyncio.shield(acting)
            except asyncio.CancelledError:
                # Its reply is started once the action is done, this socket gone; a shutdown
                # waits for that as it did for this.
                unwatched = self.service.spawn(self._start_unwatched(acting))
                self.service.turns.add(unwatched)
                unwatched.add_done_callback(self.service.turns.discard)
                raise
            if not turn.created:
                # A retry of something already done: tell this socket, start nothing.
                for frame in frames:
                    await self.send_frame(
                        {"type": "message.created", "message": frame, "duplicate": True}
                    )
                return
            await self._announce_and_start(turn, frames)
        finally:
            turn_taken.set_result(None)

    async def _start_unwatched(
        self, acting: asyncio.Task[tuple[actions.Turn, list[MessageFrame]]]
    ) -> None:
        """The turn of an action whose socket went while it ran, announced and its reply
        started once the action is done (if it created one)."""
        try:
            turn, frames = await acting
        except ChatError:
            return  # refused: nothing was created
        except Exception:
            logger.exception("a turn whose socket went failed")
            return
        if turn.created:
            try:
                await self._announce_and_start(turn, frames)
            except Exception:  # started all the same (see _announce_and_start)
                logger.exception("announcing a turn whose socket went failed")

    async def _announce_and_start(self, turn: actions.Turn, frames: list[MessageFrame]) -> None:
        """Tell the conversation of the turn's messages, then start its reply: started even
        if telling fails or is cancelled (its frames then reach sockets as they resync)."""
        try:
            for frame in frames:
                await self.service.publish(
                    self.group, {"type": "message.created", "message": frame}
                )
            if turn.first:  # the owner's tabs list it now
                conversation = turn.conversation
                await self.service.publish(
                    account_group(conversation.owner_id),
                    listed_event(conversation.pk, str(conversation)),
                )
        finally:
            if turn.reply.role == Message.Role.ASSISTANT:
                self.sent_seq[str(turn.reply.pk)] = turn.reply.seq
                self.service.start(
                    turn.reply.pk,
                    self.conversation_id,
                    actions.prepared_context(turn.reply),
                    supersedes=turn.supersedes,
                )

    async def on_send(self, frame: dict[str, Any]) -> None:
        await self._run_turn(
            actions.send_message,
            client_id=frame.get("client_id"),
            content=frame.get("content"),
            parent_id=frame.get("parent_id"),
            params=frame.get("params"),
        )

    async def on_edit(self, frame: dict[str, Any]) -> None:
        await self._run_turn(
            actions.edit_message,
            message_id=frame.get("message_id"),
            content=frame.get("content"),
            client_id=frame.get("client_id"),
            params=frame.get("params"),
        )

    async def on_regenerate(self, frame: dict[str, Any]) -> None:
        await self._run_turn(
            actions.regenerate_reply,
            reply_id=frame.get("reply_id"),
            client_id=frame.get("client_id"),
            params=frame.get("params"),
        )

    async def on_continue(self, frame: dict[str, Any]) -> None:
        await self._run_turn(actions.continue_reply, reply_id=frame.get("reply_id"))

    async def on_tool_answer(self, frame: dict[str, Any]) -> None:
        await self._run_turn(
            actions.answer_tool_call,
            reply_id=frame.get("reply_id"),
            tool_call_id=frame.get("tool_call_id"),
            content=frame.get("content"),
            client_id=frame.get("client_id"),
        )

    async def on_cancel(self, frame: dict[str, Any]) -> None:
        self._check_not_link_only()
        reply = await in_db_thread(actions.cancel_target)(
            self.scope["user"], self.conversation_id, frame.get("reply_id")
        )
        if not await self.service.cancel(reply):
            raise actions.nothing_to_stop(reply)

    async def on_ping(self, frame: dict[str, Any]) -> None:
        """The client's check that the connection still carries frames both ways (a browser
        that only reads cannot otherwise tell a connection that died without closing)."""
        await self.send_frame({"type": "pong"})

    async def on_sync(self, frame: dict[str, Any]) -> None:
        after_seq = frame.get("after_seq", 0)
        if (
            isinstance(after_seq, bool)
            or not isinstance(after_seq, int)
            or not 0 <= after_seq <= MAX_SEQ
        ):
            # Past MAX_SEQ no reply has a sequence number (and the request for a snapshot,
            # through Redis to another worker, could not carry the integer at all).
            raise InvalidParameter(
                f"after_seq must be an integer in [0, {MAX_SEQ}].", param="after_seq"
            )
        reply_id = frame.get("reply_id")
        try:
            # One try here (the socket's frames wait on it): told to sync again, the client
            # asks once more after a pause.
            reply = await self._stored_reply(reply_id, retries=())
        except DatabaseUnavailable:
            if not isinstance(reply_id, str) or len(reply_id) > 64:
                raise
            await self._sync_again(reply_id)
            return
        await self.start_sync(reply, after_seq=after_seq, retries=())

    async def _stored_reply(
        self, reply_id: Any, *, retries: tuple[float, ...] = SYNC_READ_RETRIES
    ) -> Message:
        """:meth:`reply_state`, read again after each pause of ``retries`` while the database
        cannot be reached; :class:`DatabaseUnavailable` once every try failed (or the socket
        has gone meanwhile)."""
        for pause in (*retries, None):
            try:
                return await self.reply_state(reply_id)
            except (DatabaseError, psycopg.Error) as error:
                if pause is None or self.ended:
                    raise DatabaseUnavailable() from error
                logger.warning("reading reply %s failed (%s)", reply_id, type(error).__name__)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")

    async def _sync_again(self, reply_id: str) -> None:
        """This socket's sync of a reply could not read the stored reply (the database out of
        reach through every try): nothing stays held for it. The socket is told, naming the
        reply (``database_unavailable``, ``request_type`` ``reply.sync``, ``retry_after``),
        and syncs it again from the sequence it holds once ``retry_after`` has passed
        (``static/js/replies.js``: ``syncAgainLater``), as after a reconnect; a later frame of
        the reply that it was not sent in order starts the server's own resync meanwhile."""
        self.syncing.pop(reply_id, None)
        if self.ended:
            return
        await self.send_frame(
            {
                "type": "error",
                **DatabaseUnavailable(
                    "The conversation's store cannot be reached just now; this reply is"
                    " caught up again in a moment."
                ).as_dict(),
                "request_type": "reply.sync",
                "reply_id": reply_id,
                "retry_after": SYNC_AGAIN_AFTER,
            }
        )

    async def reply_state(self, reply_id: Any) -> Message:
        """The stored reply, if this socket may sync it (a link's viewer: only what the link
        shows)."""
        if self.link_only:
            return await in_db_thread(sharing.shared_reply_state)(
                self.scope["user"], self.conversation_id, reply_id, self.link_token
            )
        return await in_db_thread(actions.reply_state)(
            self.scope["user"], self.conversation_id, reply_id, self.link_token
        )

    # -- resume: snapshot, then the deltas after it ----------------------------------------------

    async def start_sync(
        self, reply: Message, *, after_seq: int, retries: tuple[float, ...] = SYNC_READ_RETRIES
    ) -> None:
        """Send the socket ``reply`` after ``after_seq`` (its task's snapshot, or the row's),
        holding the reply's frames until then. ``retries``: of the row's read, if the database
        cannot be reached (see :meth:`_stored_reply`)."""
        reply_id = str(reply.pk)
        self.syncing.setdefault(reply_id, [])
        self.sent_seq[reply_id] = after_seq
        self.syncs_started += 1
        sync = self.sync_of[reply_id] = self.syncs_started
        try:
            asked = await self.service.request_snapshot(
                reply, after_seq, self.channel_name, sync=sync
            )
        except Exception:
            # The channel layer refused the request (Redis away, or the channel of a dead
            # worker full of earlier requests): no snapshot is coming, so the row answers.
            logger.warning("snapshot request for reply %s failed", reply_id, exc_info=True)
            asked = False
        if not asked:
            await self.snapshot_from_database(reply_id, retries=retries)
            return
        asyncio.get_running_loop().call_later(
            SNAPSHOT_TIMEOUT, self._snapshot_timeout, reply_id, sync
        )

    def _snapshot_timeout(self, reply_id: str, sync: int) -> None:
        if reply_id in self.syncing and self.sync_of.get(reply_id) == sync:
            # No task answered: its process is gone or busy; the row is the answer.
            self.service.spawn(self.snapshot_from_database(reply_id))

    async def snapshot_from_database(
        self, reply_id: str, *, retries: tuple[float, ...] = SYNC_READ_RETRIES
    ) -> None:
        """The stored reply, as the snapshot of a sync under way: read again while the
        database cannot be reached (``retries``), then the socket is told to sync again."""
        if reply_id not in self.syncing:
            return
        try:
            reply = await self._stored_reply(reply_id, retries=retries)
        except DatabaseUnavailable:
            await self._sync_again(reply_id)
            return
        # Its Usage panel (never sent to a link's viewer: the link's frames leave it out).
        charged = None if self.link_only else await charges_of_reply(reply.pk)
        await self.reply_snapshot(
            {
                "type": "reply.snapshot",
                "reply_id": reply_id,
                "mode": "full",
                "seq": reply.seq,
                "status": reply.status,
                "content": reply.content,
                "reasoning": reply.reasoning,
                "tool_calls": reply.tool_calls or [],
                "logprobs": (reply.logprobs or {}).get("content", []),
                "finish_reason": reply.finish_reason,
                "usage": reply.usage,
                "charged": charged,
                "code": reply.error_code,
                "message": reply.error_message,
            }
        )

    # -- server events → client frames --------------------------------------------------------------

    async def reply_snapshot(self, event: dict[str, Any]) -> None:
        reply_id = event["reply_id"]
        if not self._answers_the_sync(event) or not self._of_the_newest_call(event):
            return
        held = self.syncing.pop(reply_id, None)
        if held is None:
            return  # a late answer to a sync already served
        event = {key: value for key, value in event.items() if key != "sync"}
        await self.send_frame(event)
        self.sent_seq[reply_id] = event["seq"]
        for frame in held:
            if frame["type"] in _ENDS and frame.get("seq", 0) < event["seq"]:
                # An end older than the reply just sent: a reaper's word on a reply that its
                # task took back, or that a continuation (a newer call) has gone on with since.
                # Relayed, it would have the reply read again, and again, for ever.
                continue
            await self._relay(frame)

    def _of_the_newest_call(self, event: dict[str, Any]) -> bool:
        """Whether a reply's frame is of its newest call this socket has heard of: not of the
        task of an older call (streaming on until it hears that a continuation began, beside
        it), whose sequence numbers say nothing of the continuation's. A frame naming no call
        (the reaper's, the row's) is taken as before."""
        call = event.get(CALL)
        if not isinstance(call, int):
            return True
        known = self.call_of.get(event["reply_id"])
        if known is not None and call < known:
            return False
        self.call_of[event["reply_id"]] = call
        return True

    def _answers_the_sync(self, event: dict[str, Any]) -> bool:
        """Whether a task's answer (a snapshot, or word that it is gone) is that of the sync
        of its reply under way: not a late answer to an earlier one (an answer that names no
        sync, from a worker of an older version, is taken as before)."""
        sync = event.get("sync")
        return not isinstance(sync, int) or self.sync_of.get(event["reply_id"]) == sync

    async def reply_gone(self, event: dict[str, Any]) -> None:
        if not self._answers_the_sync(event):
            return
        # In a task of its own: its read may wait out the database, and the socket's other
        # events and frames go on meanwhile (this reply's are held).
        self.service.spawn(self.snapshot_from_database(event["reply_id"]))

    async def _relay(self, event: dict[str, Any]) -> None:
        reply_id = event["reply_id"]
        if not self._of_the_newest_call(event):
            return
        if reply_id in self.syncing:
            self.syncing[reply_id].append(event)
            return
        if event["type"] == "reply.failed" and event.get("code") == "worker_lost":
            task = self.service.tasks.get(uuid.UUID(reply_id))
            if (
                task is not None
                and task.task is not None
                and not task.task.done()
                and not task.superseded
            ):
                # Another process's reaper gave up on a reply this process still writes (it
                # could not reach the database for a while): its task says how it ends, and
                # its final write wins over the reaper's. Acted on here, the stored reply
                # would be read for this socket from a database that may still be out of
                # reach, and the reply held for it until a reconnect. Unless the task gave
                # way (the conversation went on from the reaped reply): then the reaper's
                # end stands, handed to this socket again (``generation._Checkpoints``).
                return
        seq = event.get("seq", 0)
        last = self.sent_seq.get(reply_id)
        if event["type"] in _ENDS and last is not None and seq < last:
            # This socket was sent text the row never stored: deltas published after the last
            # checkpoint by a process that then died. The stored reply replaces it, so that a
            # continuation (which goes on from the stored sequence number) follows seamlessly.
            # The end itself follows the snapshot.
            self.syncing[reply_id] = [event]
            # In a task of its own: its read may wait out the database, and the publisher
            # hands frames to other sockets meanwhile.
            self.service.spawn(self._end_from_database(reply_id, event))
            return
        if event["type"] == "reply.delta":
            if last is not None and seq <= last:
                return  # already sent (in a snapshot or before)
            behind = last is None or seq != last + 1  # joined mid-stream or missed a delta
        else:
            # The end of a reply this socket was not sent all of (it joined while the last
            # delta was on its way) waits for the snapshot too.
            behind = event["type"] in _ENDS and (last is None or seq > last)
        if behind:
            # Hold it and resync from what we sent, in a task of its own (the publisher hands
            # frames to other sockets meanwhile).
            self.syncing[reply_id] = [event]
            self.service.spawn(self._resync(reply_id, last or 0))
            return
        self.sent_seq[reply_id] = max(seq, last or 0)
        await self.send_frame(event)

    async def _end_from_database(self, reply_id: str, end: dict[str, Any]) -> None:
        """The stored reply, then its ``end``, for a socket sent more than the row holds."""
        try:
            await self.snapshot_from_database(reply_id)
        except ChatError:
            # Not this socket's to see whole (a link's viewer, the reply off the shown
            # branch): it is told that the reply ended, and nothing is held.
            self.syncing.pop(reply_id, None)
            await self.send_frame(end)

    async def _resync(self, reply_id: str, after_seq: int) -> None:
        try:
            reply = await self._stored_reply(reply_id)
        except DatabaseUnavailable:
            await self._sync_again(reply_id)
            return
        except ChatError:
            self.syncing.pop(reply_id, None)  # no longer visible to this socket
            return
        await self.start_sync(reply, after_seq=after_seq)

    async def reply_started(self, event: dict[str, Any]) -> None:
        if not self._of_the_newest_call(event):
            return
        if event["reply_id"] not in self.syncing:
            self.sent_seq[event["reply_id"]] = event["seq"]
        await self._relay(event)

    async def reply_delta(self, event: dict[str, Any]) -> None:
        await self._relay(event)

    async def reply_completed(self, event: dict[str, Any]) -> None:
        await self._relay(event)

    async def reply_failed(self, event: dict[str, Any]) -> None:
        await self._relay(event)

    async def message_created(self, event: dict[str, Any]) -> None:
        await self.send_frame(event)

    async def conversation_updated(self, event: dict[str, Any]) -> None:
        await self.send_frame(event)

    async def conversation_settings(self, event: dict[str, Any]) -> None:
        """Its settings saved (in another tab, say): the page's copy follows. A share link's
        socket is never sent it (``link_frame``)."""
        await self.send_frame(event)

    async def conversation_listed(self, event: dict[str, Any]) -> None:
        """One of the account's conversations, new or renamed: only its own sockets joined its
        group, and a link's frames never carry it (``link_frame``)."""
        await self._account_frame(event)

    async def conversation_deleted(self, event: dict[str, Any]) -> None:
        """Some of the account's conversations deleted: its tab unlists them (and says so, if
        it shows one of them; the socket on it is closed by ``recheck_access``)."""
        await self._account_frame(event)

    async def shared_listed(self, event: dict[str, Any]) -> None:
        """A conversation another shares with this account, new to it or renamed: only this
        account's sockets hear it (``sharing.announce_shared_listing``)."""
        await self._account_frame(event)

    async def shared_unlisted(self, event: dict[str, Any]) -> None:
        """Conversations no longer shared with this account (made private, deleted): its tab
        unlists them (one showing one of them is closed by ``recheck_access``)."""
        await self._account_frame(event)

    async def account_batch(self, event: dict[str, Any]) -> None:
        """Several of the above in one event (one send per account: ``sharing._tell_shared``),
        each sent as its own frame."""
        await self._account_frame(event)

    async def account_updated(self, event: dict[str, Any]) -> None:
        """The account's limits changed in the admin (suspended or unsuspended, a limit raised
        or lowered): its tab reads again what it may send (``sharing.announce_limits_change``)."""
        await self._account_frame(event)

    async def account_access_changed(self, event: dict[str, Any]) -> None:
        """For the account's socket on no conversation: a socket on one re-checks when its
        conversation's group tells it (``conversation.access_changed``)."""

    async def _account_frame(self, event: dict[str, Any]) -> None:
        if self.account is None:
            return
        for frame in account_frames(event):
            await self.send_frame(frame)


def _raise_if_cancelled() -> None:
    """Raise the cancellation of the running consumer that an await under its handler
    swallowed. redis-py writes every command to Redis through ``asyncio.wait_for``, which on
    Python 3.11 returns the write's result instead of raising a cancellation that lands as the
    write completes (a socket joining its groups, asking for a snapshot, announcing a turn):
    the handler then returned as if nothing had happened, and the consumer went back to
    waiting for the socket's next message. On SIGTERM daphne cancels each consumer once and
    waits, with no time limit, for all of them to end: the worker never exited. The task still
    counts the cancellation it was sent (``Task.cancelling``)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _close_for_restart(consumer: Any) -> None:
    """Close a socket whose process is shutting down with ``RESTART_CLOSE_CODE``: told so by
    the process (``restarting``), or its consumer cancelled by daphne. On SIGTERM daphne
    cancels every consumer (when its own list of connections lets it), then the process lets
    its replies finish for the grace period (``GenerationService.shutdown``): left open, the
    socket would carry nothing more until the process exits, its page showing a connection
    that looks alive over a reply that no longer moves. Closed, the page reconnects at once —
    behind the proxy, to a worker that follows the reply still being written here."""
    service = getattr(consumer, "service", None)
    if service is None or service.accepting:
        return  # not a shutdown: a socket gone, whose close there is no one to read
    with contextlib.suppress(Exception):
        await consumer.base_send({"type": "websocket.close", "code": RESTART_CLOSE_CODE})


class NoSuchSocket(AsyncWebsocketConsumer):
    """A socket opened on a path that names none (``/ws/conversations/<not a UUID>/``, a typo,
    an old client's): refused as a socket on no such conversation is, with 4404, which the page
    reads and stops reconnecting on. Without it the router raised, daphne answered the
    handshake with a 500 the page would retry for ever, and logged a traceback each time."""

    async def connect(self) -> None:
        _opening(self)
        await self.accept()
        await self.close(code=4404)


def _opening(consumer: Any) -> Any:
    """What every socket does first: its writes sent at once (``_server_send``), its log lines
    tagged and its opening logged (the path only: a link's token comes in the query string).
    Returns the scope's user."""
    consumer.server_send = _server_send(consumer.base_send)
    user = consumer.scope.get("user")
    logs.bind(request_id=f"ws-{uuid.uuid4().hex[:8]}", user_id=getattr(user, "pk", None) or "-")
    logs.logger.info("WS %s open", consumer.scope["path"])
    return user


def _why_not_a_ping(frame: Any, text_data: str | None) -> str:
    """What is wrong with a frame the account's socket was sent (it takes only a ping): as the
    conversation's socket says it, the frame not JSON, a field a ping has not, or another type
    ("This socket takes only a ping" said nothing of which)."""
    if text_data is None:
        return "Frames are JSON text, not binary."
    if len(text_data) > MAX_FRAME_CHARS:
        return f"The frame is larger than {MAX_FRAME_CHARS:,} characters."
    if not isinstance(frame, dict):
        return 'The frame is not a JSON object: this socket takes only {"type": "ping"}.'
    if frame.get("type") == "ping":
        unknown = ", ".join(sorted(str(k) for k in set(frame) - {"type"}))
        return f"A ping has no other field: {unknown}."
    return 'This socket takes only a ping ({"type": "ping"}).'


class AccountConsumer(AsyncWebsocketConsumer):
    """The socket of a signed-in account's page open on no conversation: the account's group
    alone (``account_group``), so that the page's list of conversations follows what its other
    tabs, the API and the admin do (``conversation.listed``, ``conversation.deleted``). It holds
    a place among the account's sockets as any other, sends ``ready``, answers ``ping`` (its
    only client frame), and leaves (4401) once its session no longer signs the account in."""

    account: str | None = None
    place: str | None = None
    left: bool = False
    session_expiry: SessionExpiry | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """However the socket ends (see ``ConversationConsumer.__call__``), its place is freed
        and it leaves the account's group."""
        try:
            await super().__call__(scope, receive, send)
        except asyncio.CancelledError:
            await _close_for_restart(self)
            raise
        finally:
            self._free_place()
            if self.session_expiry is not None:
                self.session_expiry.stop()
            if self.account is not None:
                with contextlib.suppress(Exception):
                    await self.service.leave(self.account, self)

    async def restarting(self) -> None:
        """Its process is shutting down (``GenerationService.shutdown``): closed at once."""
        await _close_for_restart(self)

    async def connect(self) -> None:
        user = _opening(self)
        self.service = get_service()
        await self.accept()
        if user is None or not user.is_authenticated:
            self.left = True
            await self.close(code=4401)
            return
        place = _place_of(user, self.scope)
        if not self.service.places.take(place.holder, place.limit):
            await self._leave(
                4429,
                "too_many_connections",
                f"Too many pages are open from {place.named} on this server (at most "
                f"{place.limit}): close some, and this one connects again.",
            )
            return
        self.place = place.holder
        await self.service.ensure_started()
        self.account = account_group(user.pk)
        # A tolerated race: what is announced between the page's render and this join is not
        # heard, and shows on the page's next reconnect (it then reads its list again) or load,
        # as on a conversation page's list.
        await self.service.join(self.account, self)
        self.session_expiry = SessionExpiry(
            self.service, _session_key(self.scope), self._still_signed_in
        )
        await self.session_expiry.start()
        await self.send_frame({"type": "ready"})

    async def disconnect(self, code: int) -> None:
        logs.logger.info("WS %s closed %s", self.scope["path"], code)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """As ``ConversationConsumer.dispatch``: no ORM clean-up per message, and a swallowed
        cancellation raised."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
        _raise_if_cancelled()

    async def deliver(self, event: dict[str, Any]) -> None:
        """An event of the account's group, handed over by the service (read-only)."""
        if event["type"] == "account.access_changed":
            # Through the socket's channel: the check reads the database, and the service
            # hands the event to other sockets meanwhile.
            await self.channel_layer.send(self.channel_name, {"type": event["type"]})
            return
        for frame in account_frames(event):
            await self.send_frame(frame)

    async def account_access_changed(self, event: dict[str, Any]) -> None:
        """Signed out, a new password, the account deactivated or deleted: a session that no
        longer signs the account in hears nothing more of it."""
        await self._still_signed_in()

    async def _still_signed_in(self) -> bool:
        """Whether the session still signs the account in; if not, told so and closed."""
        if self.left:
            return False
        now = await in_db_thread(_session_user)(_session_key(self.scope))
        if now.pk != self.scope["user"].pk:
            await self._leave(4401, "access_revoked", "You are signed out.")
            return False
        return True

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame: Any = None
        if text_data is not None and len(text_data) <= MAX_FRAME_CHARS:
            with contextlib.suppress(ValueError):
                frame = text.loads(text_data)
        if frame == {"type": "ping"}:
            await self.send_frame({"type": "pong"})
            return
        error: dict[str, Any] = {
            "type": "error",
            "code": "invalid_parameter",
            "message": _why_not_a_ping(frame, text_data),
            "param": "type",
        }
        if isinstance(frame, dict):
            error.update(_echoed(frame))
            if frame.get("type") == "ping":
                error["param"] = next(iter(sorted(set(frame) - {"type"})))
        await self.send_frame(error)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        if not self.left:
            await self.server_send({"type": "websocket.send", "text": encode(frame)})

    async def _leave(self, code: int, error_code: str, message: str) -> None:
        if self.left:
            return
        self.left = True
        self._free_place()  # at once: the client may try again as soon as it is told
        await self.server_send(
            {
                "type": "websocket.send",
                "text": encode({"type": "error", "code": error_code, "message": message}),
            }
        )
        await self.close(code=code)

    def _free_place(self) -> None:
        if self.place is not None:
            self.service.places.free(self.place)
            self.place = None
