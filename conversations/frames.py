"""The JSON shapes the websocket sends, built from rows in one place."""

from __future__ import annotations

from typing import Any, TypedDict

from conversations.models import Message
from conversations.quota import ReplyCharges
from conversations.text import compact_json


class MessageFrame(TypedDict):
    id: str
    parent_id: str | None
    role: str
    author: str
    author_id: int | None
    model: str | None
    content: str
    reasoning: str
    tool_calls: list[dict[str, Any]] | None
    tool_call_id: str
    logprobs: list[dict[str, Any]]
    status: str
    finish_reason: str
    error_code: str
    error_message: str
    usage: dict[str, Any] | None
    # What the reply's calls were charged, together (its Usage panel): None before any was.
    charged: ReplyCharges | None
    seq: int
    client_id: str
    created_at: str
    # Whether the reply was asked for in JSON mode (its own parameters, not the conversation's
    # as they are now): the page shows it as JSON then, and as markdown otherwise.
    json_mode: bool


def author_name(message: Message) -> str:
    if message.role == Message.Role.ASSISTANT:
        return message.model.display_name if message.model else "Assistant"
    if message.role == Message.Role.TOOL:
        return "Tool"
    return str(message.author) if message.author else "Someone"


def message_frame(message: Message, charged: ReplyCharges | None = None) -> MessageFrame:
    return {
        "id": str(message.pk),
        "parent_id": str(message.parent_id) if message.parent_id else None,
        "role": message.role,
        "author": author_name(message),
        "author_id": message.author_id,
        "model": message.model.name if message.model else None,
        "content": message.content,
        "reasoning": message.reasoning,
        "tool_calls": message.tool_calls,
        "tool_call_id": message.tool_call_id,
        "logprobs": (message.logprobs or {}).get("content", []),
        "status": message.status,
        "finish_reason": message.finish_reason,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "usage": message.usage,
        "charged": charged,
        "seq": message.seq,
        "client_id": message.client_id,
        "created_at": message.created_at.isoformat(),
        "json_mode": message.role == Message.Role.ASSISTANT and _json_mode(message.params),
    }


def _json_mode(params: Any) -> bool:
    response_format = params.get("response_format") if isinstance(params, dict) else None
    return isinstance(response_format, dict) and response_format.get("type") == "json_object"


# What a share link's socket is sent: what the shared page (templates/sharing/shared.html)
# shows — the user and assistant messages' author, text and state, and why a reply ended early
# — plus the ids and sequence numbers that keep a reply's frames continuous. Never the owner's
# reasoning, tool calls and results, usage, logprobs, errors' detail or account ids. Frames not
# listed are not sent.
_LINK_FIELDS: dict[str, tuple[str, ...] | None] = {
    "ready": None,  # None: the whole frame
    "error": None,
    "pong": None,
    "conversation.updated": ("type", "title"),
    "message.created": ("type", "message"),
    "reply.started": ("type", "reply_id", "seq"),
    "reply.delta": ("type", "reply_id", "seq", "content"),
    "reply.completed": ("type", "reply_id", "seq", "status", "finish_reason"),
    "reply.failed": ("type", "reply_id", "seq", "status"),
    "reply.snapshot": (
        "type",
        "reply_id",
        "seq",
        "status",
        "mode",
        "after_seq",
        "content",
        "finish_reason",
    ),
}
_LINK_MESSAGE_FIELDS = (
    "id",
    "parent_id",
    "role",
    "author",
    "content",
    "status",
    "finish_reason",
    "seq",
    "created_at",
)
#: Why a reply ended, as far as a link tells it: the ends its page explains under the reply
#: (static/js/replies.js FINISH_NOTES: its text is not the whole answer). Any other (a reply
#: that called a tool, say) is sent as "" — the link shows no tool calls.
LINK_FINISH_REASONS = ("length", "content_filter")
#: The messages a share link shows (its page, its socket, "Continue in my chats"): no system
#: prompt, no tool results.
LINK_ROLES = (Message.Role.USER, Message.Role.ASSISTANT)


def link_message(message: Message) -> dict[str, Any]:
    """A message as a share link's viewer is sent it (its page's data, as its socket's
    ``message.created`` carries it)."""
    frame: dict[str, Any] = dict(message_frame(message))
    return _shown_to_link({name: frame[name] for name in _LINK_MESSAGE_FIELDS})


def _shown_to_link(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("finish_reason") not in (None, *LINK_FINISH_REASONS):
        fields["finish_reason"] = ""
    return fields


def link_frame(frame: dict[str, Any]) -> dict[str, Any] | None:
    """``frame`` as a share link's viewer may see it; None when it holds nothing the link
    shows (a tool's result, say). A delta of reasoning or tool calls only keeps its sequence
    number, so the viewer's sequence stays continuous."""
    fields = _LINK_FIELDS.get(frame["type"], ())
    if fields is None:
        return frame
    if not fields:
        return None
    shown = _shown_to_link({name: frame[name] for name in fields if name in frame})
    if "message" in shown:
        message = shown["message"]
        if message.get("role") not in LINK_ROLES:
            return None
        shown["message"] = _shown_to_link(
            {name: message[name] for name in _LINK_MESSAGE_FIELDS if name in message}
        )
    return shown


# What an account's own sockets are told of its conversations, and of the account itself
# (README "Websocket protocol"): the
# fields of each frame, no more (an event may carry the publisher's channel, say). Never sent
# through a share link (``link_frame`` lists neither).
_ACCOUNT_FIELDS: dict[str, tuple[str, ...]] = {
    "conversation.listed": ("type", "conversation"),
    "conversation.deleted": ("type", "ids"),
    "shared.listed": ("type", "conversation"),
    "shared.unlisted": ("type", "ids"),
    "account.updated": ("type", "suspended"),
}


def account_frame(event: dict[str, Any]) -> dict[str, Any] | None:
    """The frame an account's socket is sent for an event of the account's group; None for an
    event that is not one of them."""
    fields = _ACCOUNT_FIELDS.get(event["type"])
    if fields is None:
        return None
    return {name: event[name] for name in fields}


#: The event that carries several of an account's frames in one send (``sharing._tell_shared``:
#: the last team deleted gives every account every conversation shared with no team).
ACCOUNT_BATCH = "account.batch"


def account_frames(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The frames an account's socket is sent for an event of the account's group, in order:
    a batch's each as :func:`account_frame` makes it, any other event's one (or none)."""
    events = event["frames"] if event["type"] == ACCOUNT_BATCH else [event]
    return [frame for told in events if (frame := account_frame(told)) is not None]


# The key under which a reply's frame names the call (ledger row) of the task that published it:
# kept from the socket (``encode``), for the consumer to drop a frame of an older call than one it
# has seen (the task of a reply's older call, streaming on until it hears that a continuation
# began: its sequence numbers run beside the continuation's, and may match them).
CALL = "call"


def _without_call(frame: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in frame.items() if key != CALL} if CALL in frame else frame


class SharedFrame(dict[str, Any]):
    """A frame handed to several sockets of this process: encoded to JSON once, not per socket.

    Receivers must treat it as read-only (the cached text would go stale)."""

    __slots__ = ("_text",)

    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(frame)
        self._text: str | None = None

    def text(self) -> str:
        if self._text is None:
            self._text = compact_json(_without_call(self))
        return self._text


def encode(frame: dict[str, Any]) -> str:
    """A frame as the compact JSON text the socket sends."""
    if type(frame) is SharedFrame:
        return frame.text()
    return compact_json(_without_call(frame))
