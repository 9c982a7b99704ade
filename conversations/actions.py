"""Every write of the chat, one transaction each. Consumers and views call these and nothing else.

Each turn-starting action (send, regenerate, edit, continue, answer a tool call) checks access,
validates, admits the upstream call through ``quota`` and writes the rows in one transaction;
the caller then starts the generation task for the returned reply. An action retried with the
same client id returns the rows of the first attempt and starts nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from psycopg.types.json import Jsonb

from conversations import access, params, quota, rows, text
from conversations.errors import (
    ChatError,
    Conflict,
    InvalidParameter,
    NotFound,
    QuotaExceeded,
    RateLimited,
)
from conversations.models import Conversation, Message, ModelConfig, UsageRecord, User
from conversations.params import going_on_with_tool_results

MAX_MESSAGE_CHARS = 100_000
MAX_CLIENT_ID = 64
RESUMABLE = (Message.Status.INTERRUPTED, Message.Status.CANCELLED)
ACTIVE = (Message.Status.PENDING, Message.Status.STREAMING)


@dataclass
class Turn:
    """The rows a turn-starting action created (or found, when ``created`` is False)."""

    conversation: Conversation
    reply: Message
    new_messages: list[Message] = field(default_factory=list)
    created: bool = True
    # A continuation of a reply the reaper gave up on: the generation channel of the process
    # whose task may still be writing it (cut off from the database, not dead), which must stop.
    supersedes: str = ""
    # The conversation's first messages: it is listed from now on (``ConversationQuerySet.listed``).
    first: bool = False


@dataclass
class GenerationContext:
    """Everything a generation task needs, loaded in one database call."""

    reply_id: uuid.UUID
    conversation_id: uuid.UUID
    user_id: int
    model: ModelConfig
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    record_id: int | None
    # Continuing a cut-off reply: the upstream gets the partial as a prefix to extend.
    prefix: bool
    # What the reply already holds (a continuation extends it; a new reply has none of it).
    content: str
    reasoning: str
    logprobs: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]
    seq: int
    needs_title: bool
    first_user_text: str


# --- validation helpers -------------------------------------------------------------------


def _check_client_id(client_id: Any) -> str:
    if not isinstance(client_id, str) or not 1 <= len(client_id) <= MAX_CLIENT_ID:
        raise InvalidParameter(
            f"client_id must be a string of 1 to {MAX_CLIENT_ID} characters.", param="client_id"
        )
    return client_id


def _check_content(content: Any, name: str = "content") -> str:
    if content is not None:
        text.bounded(content, MAX_MESSAGE_CHARS, label="The message", param=name)
    if not content or not content.strip():
        raise InvalidParameter("The message is empty.", param=name)
    return str(content)


def _message_in(conversation: Conversation, message_id: Any, role: str, *, param: str) -> Message:
    """The conversation's message ``message_id`` of ``role``; ``param``: the frame's name for
    the id, which an error about it names."""
    try:
        message = conversation.messages.get(pk=message_id)
    except (Message.DoesNotExist, ValidationError, ValueError, TypeError):
        raise NotFound("No such message in this conversation.", param=param) from None
    if message.role != role:
        article = "an" if role == Message.Role.ASSISTANT else "a"
        raise InvalidParameter(f"That message is not {article} {role} message.", param=param)
    return message


# --- history --------------------------------------------------------------------------------


# Up from a first row by primary key, one row per level (a filter on the conversation at every
# level would have the planner scan all of its messages per level); rows of another
# conversation, which no parent link leads to, are left out at the end all the same.
_WALK_UP = (
    " UNION ALL"
    " SELECT m.*, path.depth + 1 FROM conversations_message m JOIN path ON m.id = path.parent_id"
    ") SELECT {columns} FROM path WHERE conversation_id = %s ORDER BY depth DESC"
)
_PATH_SQL = "WITH RECURSIVE path AS (" + (  # noqa: S608 - fixed SQL
    " SELECT m.*, 0 AS depth FROM conversations_message m WHERE m.id = %s"
    " AND m.conversation_id = %s" + _WALK_UP
)
_LATEST_PATH_SQL = "WITH RECURSIVE path AS (" + (  # noqa: S608 - fixed SQL
    " SELECT m.*, 0 AS depth FROM conversations_message m WHERE m.conversation_id = %s"
    " AND m.id = (SELECT id FROM conversations_message WHERE conversation_id = %s"
    " ORDER BY created_at DESC LIMIT 1)" + _WALK_UP
)


# What a new turn reads of its history: the upstream's message list, the parent's state, the
# first question (the fallback title). A long conversation's rows are built without the rest.
_HISTORY_FIELDS = (
    "id",
    "conversation_id",
    "parent_id",
    "role",
    "content",
    "reasoning",
    "tool_calls",
    "tool_call_id",
    "status",
    "created_at",
)


@cache
def _path_sql(latest: bool, fields: tuple[str, ...] | None) -> str:
    return (_LATEST_PATH_SQL if latest else _PATH_SQL).format(
        columns=rows.columns(Message, "path", fields)
    )


def _path(latest: bool, params: list[Any], fields: tuple[str, ...] | None = None) -> list[Message]:
    """Only the branch's rows, walked up in the database (a long conversation's other branches
    are never loaded): one fixed, prepared statement. ``fields``: only those are read."""
    with rows.server_bound_cursor() as cursor:
        cursor.execute(_path_sql(latest, fields), params)
        found = cursor.fetchall()
    return [rows.instance(Message, row, fields) for row in found]


def path_to(conversation: Conversation, leaf_id: uuid.UUID | None) -> list[Message]:
    """The branch from the root down to ``leaf_id`` (inclusive), oldest first."""
    if leaf_id is None:
        return []
    return _path(False, [leaf_id, conversation.pk, conversation.pk])


def branch_to(conversation: Conversation, message_id: Any = None) -> list[Message]:
    """The branch down to ``message_id`` (inclusive), or to the conversation's latest message
    when it is None: the parent of a new message and its history, in one query, with the
    fields a turn reads (:data:`_HISTORY_FIELDS`). NotFound (naming ``parent_id``, the field a
    new message's parent comes in) for an id that is not a message of the conversation."""
    if message_id is None:
        return _path(True, [conversation.pk] * 3, _HISTORY_FIELDS)
    try:
        leaf_id = uuid.UUID(str(message_id))
    except ValueError:
        raise NotFound("No such message in this conversation.", param="parent_id") from None
    path = _path(False, [leaf_id, conversation.pk, conversation.pk], _HISTORY_FIELDS)
    if not path:
        raise NotFound("No such message in this conversation.", param="parent_id")
    return path


def transcript_messages(
    conversation: Conversation, path: list[Message], *, how_replies_ended: bool = False
) -> list[dict[str, Any]]:
    """The branch in the API's message format, as stored (exports; replies without output are
    left out). ``how_replies_ended`` (exports, not the upstream): a reply that did not end
    complete and stopped says so (its ``status``; its ``finish_reason``, "length" for one cut
    off at its limit), so that its import can be continued as the original can."""
    messages: list[dict[str, Any]] = []
    if conversation.system_prompt.strip():
        messages.append({"role": "system", "content": conversation.system_prompt})
    for message in path:
        if message.role == Message.Role.USER:
            messages.append({"role": "user", "content": message.content})
        elif message.role == Message.Role.ASSISTANT:
            # A reply stopped while it thought has only its thinking: exported, not sent.
            thinking_only = how_replies_ended and bool(message.reasoning)
            if not message.content and not message.tool_calls and not thinking_only:
                continue
            entry: dict[str, Any] = {"role": "assistant", "content": message.content}
            if message.reasoning:
                entry["reasoning_content"] = message.reasoning
            if message.tool_calls:
                entry["tool_calls"] = message.tool_calls
            if how_replies_ended:
                if message.status != Message.Status.COMPLETE:
                    entry["status"] = message.status
                if message.finish_reason not in ("", "stop"):
                    entry["finish_reason"] = message.finish_reason
            messages.append(entry)
        elif message.role == Message.Role.TOOL:
            messages.append(
                {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
            )
    return messages


def upstream_messages(conversation: Conversation, path: list[Message]) -> list[dict[str, Any]]:
    """The branch as the upstream's message list: the transcript, with a reply's tool calls
    sent only when answered. The user may move on without answering them (or stop a reply
    while it wrote one), and the upstream refuses a call the tool messages right after it do
    not answer."""
    messages = transcript_messages(conversation, path)
    sent: list[dict[str, Any]] = []
    for index, entry in enumerate(messages):
        if entry.get("tool_calls"):
            answered = _answered_call_ids(messages[index + 1 :])
            calls = [c for c in entry["tool_calls"] if c.get("id") in answered]
            entry = {k: v for k, v in entry.items() if k != "tool_calls"}
            if calls:
                entry["tool_calls"] = calls
            elif not entry["content"]:
                continue
        sent.append(entry)
    return sent


def _answered_call_ids(after: list[dict[str, Any]]) -> set[str]:
    """The tool calls answered by the run of tool messages at the start of ``after``."""
    answered: set[str] = set()
    for message in after:
        if message["role"] != "tool":
            break
        answered.add(message["tool_call_id"])
    return answered


# --- the turn-starting actions ---------------------------------------------------------------


def _effective_params(conversation: Conversation, overrides: Any) -> dict[str, Any]:
    """The conversation's parameters with the message's on top, checked against the model.

    The user's limits (the model allowed, the ``max_tokens`` cap, and ``max_tokens`` when none
    is given: the model's default within the cap) are applied by admission, in the same
    statement that reserves the tokens: see :func:`_admit`."""
    if overrides is not None and not isinstance(overrides, dict):
        raise InvalidParameter("params must be an object.", param="params")
    merged = {**conversation.params, **(overrides or {})}
    return params.check_params(merged, conversation.model)


def _admit(
    user: User,
    conversation: Conversation,
    reply: Message,
    effective: dict[str, Any],
    prompt_tokens: int,
) -> UsageRecord:
    """Admit the reply's upstream call; ``effective["max_tokens"]`` is then always set to what
    was reserved, so the upstream never exceeds it."""
    with _max_tokens_said_as_a_setting(user, conversation, effective):
        record = quota.admit(
            user,
            conversation.model,
            purpose=UsageRecord.Purpose.CHAT,
            prompt_tokens=prompt_tokens,
            max_tokens=effective.get("max_tokens"),
            conversation=conversation,
            message=reply,
        )
    effective["max_tokens"] = quota.output_budget(record)
    return record


@contextmanager
def _max_tokens_said_as_a_setting(
    user: User, conversation: Conversation, effective: dict[str, Any]
) -> Iterator[None]:
    """A turn refused for its ``max_tokens`` over the user's output cap, when that number is
    the conversation's Settings' (saved within an older cap the admin has lowered since: saving
    above the cap is refused), says so. Admission's own words ("max_tokens may be at most 1000
    under your limits") named a parameter the chat's user never typed as such."""
    try:
        yield
    except InvalidParameter as error:
        asked = effective.get("max_tokens")
        saved = conversation.params.get("max_tokens")
        if error.param != "max_tokens" or not isinstance(asked, int) or asked != saved:
            raise
        cap = quota.limits_for(user).max_output_tokens
        allowed = f"at most {cap:,}" if cap is not None else "less"
        raise InvalidParameter(
            f"This conversation's Max tokens ({asked:,}, in its Settings) is more than your "
            f"limits allow now ({allowed}): lower it in Settings.",
            param="max_tokens",
        ) from None


_ADMITTED = "(SELECT outcome FROM admission) = 'admitted'"

# The message a new turn goes under, locked (FOR SHARE: against a Continue's FOR UPDATE of it)
# and read again once the lock is had: a reply that became pending meanwhile (continued) is
# not there to answer.
_SETTLED_PARENT = (
    "settled_parent AS MATERIALIZED (SELECT 1 FROM conversations_message WHERE id = %s"
    " AND status NOT IN ('pending', 'streaming') FOR SHARE),"  # ACTIVE
)


def _admit_and_insert(
    user: User,
    conversation: Conversation,
    new: list[Message],
    reply: Message,
    effective: dict[str, Any],
    prompt_tokens: int,
    settled_parent: Message | None = None,
) -> UsageRecord:
    """Admit the reply's upstream call and, only if it is admitted, insert the turn's new
    messages and touch the conversation: ONE statement (outside a transaction it is its own,
    so nothing of a refused or failed turn stays, and no BEGIN/COMMIT round trips are paid).
    ``effective["max_tokens"]`` is then set to what was reserved, so the upstream never
    exceeds it (the row keeps the parameters as asked).

    ``settled_parent``: an existing message the turn goes under, which must not be a reply
    in progress when the statement runs. It is locked before the user's usage row (the order
    a Continue takes them in: no deadlock) and checked once locked: a Continue of it that
    committed meanwhile refuses the turn, one that comes later finds the turn under it."""
    admission = quota.admission_params(
        user.pk,
        conversation.model_id,
        purpose=UsageRecord.Purpose.CHAT,
        prompt_tokens=prompt_tokens,
        max_tokens=effective.get("max_tokens"),
        conversation_id=conversation.pk,
        message_id=reply.pk,
    )
    insert, values = rows.insert_sql(new, where=_ADMITTED)
    lock, admit, locked = "", quota.ADMIT_SQL, []
    if settled_parent is not None:
        lock, locked = _SETTLED_PARENT, [settled_parent.pk]
        admit += " WHERE EXISTS (SELECT 1 FROM settled_parent)"
    with rows.server_bound_cursor() as cursor:
        cursor.execute(
            f"WITH {lock} admission AS MATERIALIZED ({admit}),"  # noqa: S608 - fixed SQL
            " touched AS (UPDATE conversations_conversation SET updated_at = %s"
            f" WHERE id = %s AND {_ADMITTED}),"
            f" inserted AS ({insert}) SELECT * FROM admission",
            [*locked, *admission, timezone.now(), conversation.pk, *values],
        )
        row = cursor.fetchone()
    if row is None:  # the message it goes under became a reply in progress meanwhile
        raise _parent_in_progress()
    with _max_tokens_said_as_a_setting(user, conversation, effective):
        record = quota.admitted(row, admission)
    effective["max_tokens"] = quota.output_budget(record)
    return record


def _start_reply(
    user: User,
    conversation: Conversation,
    parent: Message,
    effective: dict[str, Any],
    *,
    client_id: str = "",
    channel: str,
    path: list[Message] | None = None,
    with_parent: bool = False,
) -> Message:
    """Admit the call and create the pending reply under ``parent`` (see
    :func:`_admit_and_insert`).

    ``path``: the branch down to ``parent`` inclusive when the caller has it already;
    ``with_parent``: ``parent`` is new and unsaved, and is inserted with the reply (under
    ``parent.parent``, which must then not be a reply in progress)."""
    model = conversation.model
    if path is None:
        path = path_to(conversation, parent.id)
    history = upstream_messages(conversation, path)
    params.check_json_prompt(
        effective, [m.get("content") or "" for m in history if m["role"] in ("system", "user")]
    )
    reply = Message(
        conversation=conversation,
        parent=parent,
        role=Message.Role.ASSISTANT,
        model=model,
        status=Message.Status.PENDING,
        params=effective,
        client_id=client_id,
        generation_channel=channel,
        heartbeat_at=timezone.now(),
    )
    record = _admit_and_insert(
        user,
        conversation,
        [parent, reply] if with_parent else [reply],
        reply,
        effective,
        quota.estimate_prompt_tokens(history, effective.get("tools")),
        settled_parent=parent.parent if with_parent else None,
    )
    # What load_generation_context would read back from these rows, kept once they commit.
    first_user = next((m for m in path if m.role == Message.Role.USER), None)
    context = GenerationContext(
        reply_id=reply.id,
        conversation_id=conversation.id,
        user_id=user.pk,
        model=model,
        messages=history,
        params=json.loads(json.dumps(effective)),  # as the JSON column returns it
        record_id=record.pk,
        prefix=False,
        content="",
        reasoning="",
        logprobs=[],
        tool_calls=[],
        seq=reply.seq,
        needs_title=not conversation.title,
        first_user_text=first_user.content if first_user else "",
    )
    # Kept on this very instance (not a cache by id: a row loaded later, or changed since,
    # never picks it up), for the caller that starts the reply right after commit.
    reply.__dict__[_CONTEXT_KEY] = context
    return reply


_CONTEXT_KEY = "_generation_context"


def prepared_context(reply: Message) -> GenerationContext | None:
    """What :func:`load_generation_context` would read for ``reply`` just after the action
    that created (or continued) it committed, built from the rows it wrote (None for any
    other instance): the generation task started at once need not read them back."""
    context: GenerationContext | None = reply.__dict__.get(_CONTEXT_KEY)
    return context


_CLIENT_ID_SQL = (
    "SELECT EXISTS (SELECT 1 FROM conversations_message WHERE conversation_id = %s"
    " AND client_id = %s)"
)


#: In ``asked`` (see :func:`_existing_turn`): the parameters of the reply a message starts.
REPLY_PARAMS = "reply_params"


def _as_stored(effective: dict[str, Any]) -> dict[str, Any]:
    """Parameters as a reply's JSON column returns them (to compare with a stored reply's)."""
    return json.loads(json.dumps(effective))  # type: ignore[no-any-return]


def _existing_turn(
    conversation: Conversation, client_id: str, asked: dict[str, Any]
) -> Turn | None:
    """The turn a previous attempt with this client id started, if any.

    ``asked``: what this attempt asks for, as the first row it would write holds it (its
    role, and its text where it has one), and under :data:`REPLY_PARAMS` the parameters of
    the reply it would start under that row (a message sent or edited). A retry asks for the
    same; a request that reuses the id for something else is refused (answered with the first
    request's rows, its own text or parameters would be dropped without a word)."""
    with rows.server_bound_cursor() as cursor:  # one fixed statement: most ids are new
        cursor.execute(_CLIENT_ID_SQL, [conversation.pk, client_id])
        (seen,) = cursor.fetchone()
    if not seen:
        return None
    first = conversation.messages.filter(client_id=client_id).first()
    if first is None:
        return None
    if any(getattr(first, name) != value for name, value in asked.items() if name != REPLY_PARAMS):
        raise Conflict(
            "This client_id was already used for another message in this conversation;"
            " a new message needs a new one.",
            param="client_id",
        )
    if first.role == Message.Role.ASSISTANT:
        return Turn(conversation, reply=first, new_messages=[first], created=False)
    reply = first.children.filter(role=Message.Role.ASSISTANT).order_by("created_at").first()
    if reply is None:  # a tool answer still waiting for its siblings
        return Turn(conversation, reply=first, new_messages=[first], created=False)
    if REPLY_PARAMS in asked and reply.params != asked[REPLY_PARAMS]:
        raise Conflict(
            "This client_id was already used for this message with other parameters;"
            " a new request needs a new one.",
            param="client_id",
        )
    return Turn(conversation, reply=reply, new_messages=[first, reply], created=False)


def _idempotent(
    conversation: Conversation, client_id: str, asked: dict[str, Any], create: Any
) -> Turn:
    existing = _existing_turn(conversation, client_id, asked)
    if existing is not None:
        return existing
    return _create_once(conversation, client_id, asked, create)


def _create_once(
    conversation: Conversation,
    client_id: str,
    asked: dict[str, Any],
    create: Any,
    *,
    one_statement: bool = False,
) -> Turn:
    """``create()`` in a transaction, unless a concurrent attempt with the id got there first.

    ``one_statement``: ``create`` writes in a single statement, atomic on its own; outside a
    caller's transaction none is opened around it (two round trips fewer). Inside one, a
    savepoint still guards it, so a lost race leaves the caller's transaction usable."""
    try:
        if one_statement and not connection.in_atomic_block:
            return create()  # type: ignore[no-any-return]
        with transaction.atomic():
            return create()  # type: ignore[no-any-return]
    except (IntegrityError, QuotaExceeded, RateLimited):
        # Another attempt with the same id may have won the race: its rows are in the way (the
        # client id is unique), or its reservation or stream slot is (admission, which waited
        # for the user's usage row while it held it, counts them; its rows committed with
        # them). Then this attempt is its duplicate: answered with what it created, never
        # refused for it. A refusal stands only for a request nobody made before (one more
        # statement on that path alone).
        existing = _existing_turn(conversation, client_id, asked)
        if existing is None:
            raise
        return existing


def _begin_turn(
    user: User, conversation_id: Any, client_id: Any, asked: dict[str, Any]
) -> tuple[str, Conversation, Turn | None]:
    """Every turn starts alike: a valid client id, a conversation the user may post in, and
    the turn an earlier attempt with that id already started (if any; ``asked``: see
    :func:`_existing_turn`)."""
    client_id = _check_client_id(client_id)
    conversation = access.access_conversation_for_posting(user, conversation_id)
    return client_id, conversation, _existing_turn(conversation, client_id, asked)


def _parent_in_progress() -> Conflict:
    return Conflict("Wait for the reply in progress to finish (or stop it) first.")


def _check_parent_is_settled(parent: Message) -> None:
    if parent.status in ACTIVE:
        raise _parent_in_progress()


def _leave_to_the_reaper(parent: Message) -> None:
    """A message sent under a reply the reaper gave up on while its task may live on
    (:func:`reaped_while_its_task_may_live`) is written from the text the reaper kept: the
    reply is no longer its old task's to take back (``_ANSWERED``), nor to answer a resync
    from. Said on the row itself, its generation channel cleared under the row's lock: a
    checkpoint (``CHECKPOINT_MANY_SQL``) sees only the messages committed when it began, and
    one waiting on this lock re-checks the row, not the messages under it. If a checkpoint took
    the reply back first, it is being written again, and the message waits for it like any
    other."""
    if parent.status != Message.Status.INTERRUPTED:
        return
    left = (
        Message.objects.filter(
            pk=parent.pk, status=Message.Status.INTERRUPTED, error_code="worker_lost"
        )
        .exclude(generation_channel="")
        .update(generation_channel="")
    )
    if not left:
        _check_parent_is_settled(Message.objects.only("status").get(pk=parent.pk))


def _check_not_running(reply: Message, doing: str) -> None:
    """A reply still being written is not ``doing`` (regenerated, continued): that would be a
    second generation (and charge) beside the running one. The refusal names the reply and
    its state, so a client can tell it from any other conflict."""
    if reply.status in ACTIVE:
        raise Conflict(
            f"That reply is still being written ({reply.status}): stop it or wait for it to"
            f" finish before you {doing} it.",
            param="reply_id",
            reply_id=str(reply.pk),
            status=reply.status,
        )


def _check_reply_asks_for_tools(reply: Message) -> None:
    # A reply still streaming may add calls or change their arguments; one that stopped short
    # (cancelled, interrupted, failed, cut off) never finished asking: answering either would
    # start a next reply from calls the model did not make (beside the running one, even).
    # A finished reply stays finished, so the row as read here is as good as a locked one.
    asked = reply.status == Message.Status.COMPLETE and reply.finish_reason == "tool_calls"
    if not asked:
        raise Conflict("That reply has not finished asking for its tool calls.")


def send_message(
    user: User,
    conversation_id: uuid.UUID | str,
    *,
    client_id: Any,
    content: Any,
    parent_id: Any = None,
    params: Any = None,
    channel: str = "",
) -> Turn:
    """Post a user message and start its reply.

    A retry asks for the same text with the same parameters (compared as they apply, the
    conversation's included); a client id reused for other text or parameters is refused."""
    client_id = _check_client_id(client_id)
    conversation = access.access_conversation_for_posting(user, conversation_id)
    effective = _effective_params(conversation, params)
    asked = {"role": Message.Role.USER, "content": content, REPLY_PARAMS: _as_stored(effective)}
    existing = _existing_turn(conversation, client_id, asked)
    if existing is not None:
        return existing
    content = _check_content(content)

    def create() -> Turn:
        branch = branch_to(conversation, parent_id)
        parent = branch[-1] if branch else None
        if parent is not None:
            _check_parent_is_settled(parent)
            _leave_to_the_reaper(parent)
        message = Message(
            conversation=conversation,
            parent=parent,
            role=Message.Role.USER,
            author=user,
            content=content,
            client_id=client_id,
        )
        reply = _start_reply(
            user,
            conversation,
            message,
            effective,
            channel=channel,
            path=[*branch, message],
            with_parent=True,
        )
        # Its first message (none above it): the owner's lists show the conversation from now on.
        return Turn(conversation, reply=reply, new_messages=[message, reply], first=not branch)

    # No earlier attempt was found above: only a concurrent one can still be in the way.
    try:
        return _create_once(conversation, client_id, asked, create, one_statement=True)
    except Conflict:
        # Perhaps the reply in the way is the one a concurrent attempt with this id started.
        existing = _existing_turn(conversation, client_id, asked)
        if existing is None:
            raise
        return existing


def regenerate_reply(
    user: User,
    conversation_id: uuid.UUID | str,
    *,
    reply_id: Any,
    client_id: Any,
    params: Any = None,
    channel: str = "",
) -> Turn:
    """A new sibling of ``reply_id``: the same question answered again.

    What it asks for is an answer to that question with these parameters: a retry asks for
    the same (a sibling of ``reply_id`` names the same question), while a client id reused for
    another question or other parameters is refused. (Parameters are compared as they apply,
    the conversation's included: a retry after they changed is refused too.)"""
    client_id = _check_client_id(client_id)
    conversation = access.access_conversation_for_posting(user, conversation_id)
    old = _message_in(conversation, reply_id, Message.Role.ASSISTANT, param="reply_id")
    effective = _effective_params(conversation, params)
    if old.parent is not None and old.parent.role == Message.Role.TOOL:
        # Again an answer to tool results, with what :func:`answer_tool_call` gave the first.
        effective = going_on_with_tool_results(effective)
    asked = {
        "role": Message.Role.ASSISTANT,
        "parent_id": old.parent_id,
        "params": _as_stored(effective),
    }
    existing = _existing_turn(conversation, client_id, asked)
    if existing is not None:
        return existing
    parent = old.parent
    if parent is None:
        raise InvalidParameter("That reply has nothing to answer.", param="reply_id")
    _check_not_running(old, "regenerate")
    question: Message = parent

    def create() -> Turn:
        reply = _start_reply(
            user, conversation, question, effective, client_id=client_id, channel=channel
        )
        return Turn(conversation, reply=reply, new_messages=[reply])

    return _idempotent(conversation, client_id, asked, create)


def edit_message(
    user: User,
    conversation_id: uuid.UUID | str,
    *,
    message_id: Any,
    content: Any,
    client_id: Any,
    params: Any = None,
    channel: str = "",
) -> Turn:
    """A new branch: the edited user message becomes a sibling of the original, then a reply.

    A retry asks for the same text in the same place (beside ``message_id``, or beside a
    sibling of it) with the same parameters; a client id reused to edit a message elsewhere,
    or with other parameters, is refused."""
    client_id = _check_client_id(client_id)
    conversation = access.access_conversation_for_posting(user, conversation_id)
    original = _message_in(conversation, message_id, Message.Role.USER, param="message_id")
    effective = _effective_params(conversation, params)
    asked = {
        "role": Message.Role.USER,
        "content": content,
        "parent_id": original.parent_id,
        REPLY_PARAMS: _as_stored(effective),
    }
    existing = _existing_turn(conversation, client_id, asked)
    if existing is not None:
        return existing
    content = _check_content(content)

    def create() -> Turn:
        message = Message.objects.create(
            conversation=conversation,
            parent=original.parent,
            role=Message.Role.USER,
            author=user,
            content=content,
            client_id=client_id,
        )
        reply = _start_reply(user, conversation, message, effective, channel=channel)
        return Turn(conversation, reply=reply, new_messages=[message, reply])

    return _idempotent(conversation, client_id, asked, create)


def continue_reply(
    user: User, conversation_id: uuid.UUID | str, *, reply_id: Any, channel: str = ""
) -> Turn:
    """Extend a reply that was cut off (length) or interrupted, in place.

    Sent again while the continuation runs, it is refused naming the reply's state: one
    generation, and an answer the sender can tell from silence.
    """
    conversation = access.access_conversation_for_posting(user, conversation_id)
    with transaction.atomic():
        reply = (
            Message.objects.select_for_update()
            .filter(
                conversation=conversation,
                pk=_message_in(conversation, reply_id, Message.Role.ASSISTANT, param="reply_id").pk,
            )
            .get()
        )
        _check_not_running(reply, "continue")
        truncated = reply.status == Message.Status.COMPLETE and reply.finish_reason == "length"
        about_it = {"param": "reply_id", "reply_id": str(reply.pk), "status": reply.status}
        if not (truncated or reply.status in RESUMABLE):
            raise Conflict(
                "Only a reply that was cut off or interrupted can be continued.", **about_it
            )
        if not reply.content:
            raise Conflict("That reply has no text to continue; regenerate it instead.", **about_it)
        if reply.children.exists():
            # Extended in place, it would change the history that what follows it was
            # written from (and a reply streaming again would have messages under it).
            raise Conflict("Only the last reply of a branch can be continued.")
        if reply.model is not None and reply.model_id != conversation.model_id:
            # Continued by another model, the reply would be one model's text under the
            # other's name, its thinking shown or not by the wrong rule, and its call charged
            # as the other's: the user picks which model answers.
            written_by, now = reply.model.display_name, conversation.model.display_name
            raise Conflict(
                f"This reply was written by {written_by}, and the conversation now uses {now}: "
                f"regenerate it to answer with {now}, or switch the conversation back to "
                f"{written_by} to continue it.",
                **about_it,
            )
        # Reaped, its task may yet live (its process cut off from the database, not dead):
        # the continuation's call is newer, so nothing that task writes lands any more
        # (``CHECKPOINT_MANY_SQL``), and it is told to stop (``GenerationService.start``).
        reaped = reply.error_code == "worker_lost"
        supersedes = reply.generation_channel if reaped else ""
        path = path_to(conversation, reply.parent_id)
        history = upstream_messages(conversation, path)
        effective = _effective_params(
            conversation, _within_todays_ceiling(user, conversation, reply)
        )
        record = _admit(
            user,
            conversation,
            reply,
            effective,
            quota.estimate_prompt_tokens(history, effective.get("tools"))
            + quota.estimate_tokens(reply.content),
        )
        # The text so far was billed by earlier calls: if this one must be estimated (its
        # process dies), only what comes after it counts.
        record.output_base_chars = len(reply.content) + len(reply.reasoning)
        record.save(update_fields=["output_base_chars"])
        reply.params = effective
        reply.status = Message.Status.PENDING
        reply.error_code = reply.error_message = reply.finish_reason = ""
        reply.generation_channel = channel
        reply.heartbeat_at = timezone.now()
        reply.save(
            update_fields=[
                "params",
                "status",
                "error_code",
                "error_message",
                "finish_reason",
                "generation_channel",
                "heartbeat_at",
                "updated_at",
            ]
        )
    # For the task started right after commit: read back then, the reply could be gone (its
    # conversation deleted meanwhile), and its call's reservation out of reach, unsettled.
    reply.__dict__[_CONTEXT_KEY] = _generation_context(conversation, reply, path, record)
    return Turn(conversation, reply=reply, new_messages=[reply], supersedes=supersedes)


def _within_todays_ceiling(
    user: User, conversation: Conversation, reply: Message
) -> dict[str, Any]:
    """The reply's parameters for the call that goes on from it (its continuation, or the
    reply to its tool calls' results): its last call's ``max_tokens`` (what that call
    reserved), lowered to today's ceiling (the model's output limit, the user's cap) if the
    admin lowered either since: Continue and a tool answer send no parameters the user could
    fix."""
    params = dict(reply.params or {})
    if isinstance(params.get("max_tokens"), int):
        cap = quota.limits_for(user).max_output_tokens
        ceilings = [conversation.model.max_output_tokens, *([cap] if cap is not None else [])]
        params["max_tokens"] = min(params["max_tokens"], *ceilings)
    return params


def answer_tool_call(
    user: User,
    conversation_id: uuid.UUID | str,
    *,
    reply_id: Any,
    tool_call_id: Any,
    content: Any,
    client_id: Any,
    channel: str = "",
) -> Turn:
    """Record a tool's result; once every call of the reply is answered, the reply continues."""
    asked = {"role": Message.Role.TOOL, "tool_call_id": tool_call_id, "content": content}
    client_id, conversation, existing = _begin_turn(user, conversation_id, client_id, asked)
    if existing is not None:
        return existing
    text.bounded(content, MAX_MESSAGE_CHARS, label="The tool result", param="content")
    reply = _message_in(conversation, reply_id, Message.Role.ASSISTANT, param="reply_id")
    _check_reply_asks_for_tools(reply)
    calls = {call.get("id"): call for call in reply.tool_calls or []}
    if not isinstance(tool_call_id, str) or tool_call_id not in calls:
        raise InvalidParameter("That reply made no such tool call.", param="tool_call_id")

    def create() -> Turn:
        # Tool answers hang in a chain under the reply, in the order they are given: answers
        # given at the same moment (two tabs) take turns on the reply's row, so the second
        # sees the first and hangs under it (and the last one starts the next reply, once).
        list(Message.objects.select_for_update().filter(pk=reply.pk).values_list("pk"))
        answered: list[Message] = []
        node = reply
        while True:
            child = node.children.filter(role=Message.Role.TOOL).first()
            if child is None:
                break
            answered.append(child)
            node = child
        if any(m.tool_call_id == tool_call_id for m in answered):
            raise Conflict("That tool call is already answered.")
        tool_message = Message.objects.create(
            conversation=conversation,
            parent=node,
            role=Message.Role.TOOL,
            author=user,
            content=content,
            tool_call_id=tool_call_id,
            client_id=client_id,
        )
        if len(answered) + 1 < len(calls):
            return Turn(conversation, reply=tool_message, new_messages=[tool_message])
        effective = going_on_with_tool_results(
            _effective_params(conversation, _within_todays_ceiling(user, conversation, reply))
        )
        next_reply = _start_reply(user, conversation, tool_message, effective, channel=channel)
        return Turn(conversation, reply=next_reply, new_messages=[tool_message, next_reply])

    try:
        return _idempotent(conversation, client_id, asked, create)
    except Conflict:
        # Perhaps the answer in the way is this one, given by a concurrent attempt with this
        # id (a retry on another socket while the first was waiting for the reply's row).
        existing = _existing_turn(conversation, client_id, asked)
        if existing is None:
            raise
        return existing


# --- what the generation task reads and writes ------------------------------------------------


def load_generation_context(reply_id: uuid.UUID) -> GenerationContext:
    reply = Message.objects.select_related("conversation__model", "conversation__owner").get(
        pk=reply_id
    )
    conversation = reply.conversation
    record = (
        UsageRecord.objects.filter(quota.reserved_for_message(reply.id))
        .order_by("-created_at")
        .first()
    )
    return _generation_context(conversation, reply, path_to(conversation, reply.parent_id), record)


def _generation_context(
    conversation: Conversation, reply: Message, path: list[Message], record: UsageRecord | None
) -> GenerationContext:
    """What the task generating ``reply`` (its text so far extended, if it has any) needs:
    ``path``, the branch down to its parent; ``record``, its call's reserved ledger row."""
    messages = upstream_messages(conversation, path)
    prefix = bool(reply.content)
    if prefix:
        partial: dict[str, Any] = {"role": "assistant", "content": reply.content, "prefix": True}
        if reply.reasoning:
            partial["reasoning_content"] = reply.reasoning
        messages.append(partial)
    first_user = next((m for m in path if m.role == Message.Role.USER), None)
    return GenerationContext(
        reply_id=reply.id,
        conversation_id=conversation.id,
        user_id=record.user_id if record and record.user_id else conversation.owner_id,
        model=conversation.model,
        messages=messages,
        params=json.loads(json.dumps(reply.params)),  # as the JSON column returns it
        record_id=record.pk if record else None,
        prefix=prefix,
        content=reply.content,
        reasoning=reply.reasoning,
        logprobs=list((reply.logprobs or {}).get("content") or []),
        tool_calls=list(reply.tool_calls or []),
        seq=reply.seq,
        needs_title=not conversation.title,
        first_user_text=first_user.content if first_user else "",
    )


def _execute_bound(sql: str, params: list[Any]) -> int:
    """One statement through :func:`rows.server_bound_cursor` (the reply's whole text goes
    out as one value, not escaped into the SQL); the rows affected. Inside the caller's
    transaction, if any."""
    with rows.server_bound_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# Whether a reply's row is still the task's to write: the one rule of its checkpoints and its
# final write, spelled with the task's generation channel and its call's ledger row (``{channel}``,
# ``{record}``). The row is the task's while
# - its generation channel is the task's process's: a continuation started on another worker
#   moves it there;
# - its newest call is the task's own: a continuation begun since (on any worker, this one's
#   too) has a call of its own, a ledger row with a higher id; the task of the older call
#   stops (``GenerationService.start``) and nothing it writes any more lands;
# - and it is still being written — or the reaper gave up on it while its task lived: marked
#   ``interrupted`` (``worker_lost``) because the task's process could not reach the database
#   for longer than ``GENERATION_STALE_SECONDS``. The task's next checkpoint takes it back
#   (``streaming``, the task's text), as its final write would: the reaper kept only what was
#   last checkpointed. Not once the conversation has gone on from it (``_ANSWERED``, below),
#   nor if its call may not run on: its worst case or its stream slot no longer fits the
#   user's limits, or the account was suspended or deactivated (``usage_take_back``).
_THE_TASKS_CALL = """m.generation_channel = {channel}
       AND NOT EXISTS (SELECT 1 FROM conversations_usagerecord u
                        WHERE u.message_id = m.id AND u.id > {record})"""
_WRITABLE = """(m.status IN ('pending', 'streaming')
            OR ({record} IS NOT NULL AND m.status = 'interrupted'
                AND m.error_code = 'worker_lost' AND NOT {answered}))"""
# A reaped reply that the conversation has gone on from (a message sent under it, shown
# interrupted): taken back, its text would change under what follows it, which was written
# from the text the reaper kept (as a Continue of it is refused). Its task gives way instead.
_ANSWERED = """EXISTS (SELECT 1 FROM conversations_message k WHERE k.parent_id = m.id)"""
_REAPED_AND_ANSWERED = f"""(m.status = 'interrupted' AND m.error_code = 'worker_lost'
            AND {_ANSWERED})"""


def _the_tasks_to_write(channel: str, record: str, *, or_already: str = "") -> str:
    """The SQL condition on ``m`` (the reply's row) of the rule above; ``or_already``: a
    state of the row that counts as written too (the final write's own, made before)."""
    writable = _WRITABLE.format(record=record, answered=_ANSWERED)
    if or_already:
        writable = f"({writable}\n            OR {or_already})"
    return f"{_THE_TASKS_CALL.format(channel=channel, record=record)}\n       AND {writable}"


CHECKPOINT_MANY_SQL = (
    """
WITH c AS (
    SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::jsonb[], %s::integer[],
                         %s::bigint[]) AS c(id, content, reasoning, tool_calls, seq, record_id)
), w AS (
    SELECT %s::text AS channel
), reaped AS MATERIALIZED (
    -- Rows the reaper gave up on that their tasks would take back: locked before their calls
    -- are (the order a message sent under such a row takes: the row, then the user's usage).
    SELECT m.id, c.record_id
      FROM c, w, conversations_message m
     WHERE m.id = c.id AND m.status = 'interrupted' AND m.seq <= c.seq
       AND """  # noqa: S608 - fixed SQL
    + _the_tasks_to_write("w.channel", "c.record_id")
    + """
       FOR UPDATE OF m
), held AS MATERIALIZED (
    -- Each one's call held again (reserved for its worst case, its stream slot), if that still
    -- fits the user's day, month and running replies and the account may send; if not, the
    -- row stays as the reaper left it.
    SELECT r.id, usage_take_back(r.record_id) AS held FROM reaped r
), written AS (
    UPDATE conversations_message m
       SET status = 'streaming', content = c.content, reasoning = c.reasoning,
           tool_calls = c.tool_calls, seq = c.seq, error_code = '', error_message = '',
           heartbeat_at = now(), updated_at = now()
      FROM c, w
     WHERE m.id = c.id AND m.seq <= c.seq
       AND """
    + _the_tasks_to_write("w.channel", "c.record_id")
    + """
       AND (m.status IN ('pending', 'streaming')
            OR EXISTS (SELECT 1 FROM held h WHERE h.id = m.id AND h.held))
    RETURNING m.id
)
SELECT c.id, """
    + _REAPED_AND_ANSWERED
    + """ OR h.held IS FALSE, m.seq, h.held IS FALSE
  FROM c, w, conversations_message m LEFT JOIN held h ON h.id = m.id
 WHERE m.id = c.id
   AND (NOT ("""
    + _THE_TASKS_CALL.format(channel="w.channel", record="c.record_id")
    + ") OR "
    + _REAPED_AND_ANSWERED
    + " OR h.held IS FALSE)"
)
"""Save the text so far of many live replies in one statement (never after finalize, never
over a newer checkpoint, only while the row is the task's to write — see the rule above: a task
whose reply was continued since, here or on another worker, no longer writes it; one the
reaper gave up on while it lived takes its row back, and its call: ``usage_take_back``,
migrations 0022, 0025 and 0027, makes the call the reaper settled ``reserved`` again for the
worst case it was admitted with and retakes its stream slot, so the user's replies at once count
it while it runs on — if that worst case still fits what is left of the user's day and month,
the slot the user's running replies, and the account is active and not suspended; if not, the
row stays as the reaper left it): a column per field, from
:func:`checkpoint_columns`, then the process's channel. A reply with text saved is streaming:
the first checkpoint also moves a ``pending`` row to ``streaming`` (its task has been streaming
since it started; the row learns it here rather than in a write of its own). Run from the event
loop on the asyncio pool (``generation._Checkpoints``).

It returns the replies whose rows are no longer their tasks' at all: another worker's
generation channel, or a newer call (a continuation begun elsewhere while word of it could not
reach this worker: ``generation.superseded`` lost with Redis), or a reaped row the conversation
has gone on from, or one whose call could not be held again; with each, whether it is the last
(the reaper's end stands), the row's sequence number, and whether the call could not be held
again (its task stops at once, writes nothing of the reply, and only settles its call again to
what it really used). Their tasks give way. Not a
reply whose checkpoint was only skipped — a newer one of its own written already, or its row
finalized — nor one whose row is gone (its conversation deleted: stopped by its own word). A
row reaped while the statement waited for it is taken back by the task's next checkpoint."""


def _json_or_null(value: Any) -> Jsonb | None:
    return Jsonb(value) if value else None


Checkpoint = tuple[uuid.UUID, str, str, "Jsonb | None", int, "int | None"]


def checkpoint(
    reply_id: uuid.UUID,
    *,
    content: str,
    reasoning: str,
    tool_calls: list[dict[str, Any]] | None,
    seq: int,
    record_id: int | None = None,
) -> Checkpoint:
    """One reply's row of :data:`CHECKPOINT_MANY_SQL` (``record_id``: the task's own call)."""
    return (reply_id, content, reasoning, _json_or_null(tool_calls), seq, record_id)


def checkpoint_columns(rows: list[Checkpoint]) -> list[list[Any]]:
    """The parameters of :data:`CHECKPOINT_MANY_SQL` for ``rows``: one array per column."""
    return [list(column) for column in zip(*rows, strict=True)]


_FINALIZE = (
    """
WITH ours AS (
    SELECT %s::text AS status, %s::text AS content, %s::text AS reasoning,
           %s::jsonb AS tool_calls, %s::jsonb AS logprobs, %s::integer AS seq,
           %s::text AS finish_reason, %s::jsonb AS usage, %s::text AS error_code,
           %s::text AS error_message, %s::uuid AS id, %s::text AS channel, %s::bigint AS record_id
), finalized AS (
    UPDATE conversations_message m
       SET status = o.status, content = o.content, reasoning = o.reasoning,
           tool_calls = o.tool_calls, logprobs = o.logprobs, seq = o.seq,
           finish_reason = o.finish_reason, usage = o.usage, error_code = o.error_code,
           error_message = o.error_message, heartbeat_at = NULL, updated_at = now()
      FROM ours o
     WHERE m.id = o.id
       AND """  # noqa: S608 - fixed SQL
    + _the_tasks_to_write(
        "o.channel",
        "o.record_id",
        # this very write, committed, whose answer was lost: made again, it changes nothing
        or_already="""(m.status = o.status AND m.seq = o.seq AND m.error_code = o.error_code
                AND m.heartbeat_at IS NULL AND m.content = o.content
                AND m.reasoning = o.reasoning)""",
    )
    + """
    RETURNING 1
)"""
)

FINALIZE_SQL = _FINALIZE + " SELECT count(*) FROM finalized"  # noqa: S608 - fixed SQL
"""Write a reply's final state, once, by the task running it: with :func:`finalize_params`.
0 rows: something else finalized it, or the reply is no longer this task's (another process
holds it — see CHECKPOINT_MANY_SQL — or a continuation, with a call of its own, has begun).

A row the reaper marked ``interrupted`` (``worker_lost``) while its task still lived is the
task's to write: its process could not reach the database for longer than the reaper waits
(``GENERATION_STALE_SECONDS``), and the reaper kept only the text last checkpointed. A try
that finds the row already as it would write it (an earlier try committed, its answer lost:
``pgpool.outlasting_outage``) counts as the write, so the caller learns the reply is final as
it wrote it and says so to the sockets."""

FINALIZE_AND_SETTLE_SQL = (
    _FINALIZE  # noqa: S608 - fixed SQL
    + """, settlement AS (
    SELECT %s::bigint AS record_id, %s::text AS outcome, %s::boolean AS has_usage,
           %s::integer AS prompt, %s::integer AS cache_hit, %s::integer AS cache_miss,
           %s::integer AS completion, %s::integer AS reasoning, %s::text AS time_zone
)
SELECT f.n,
       usage_settle_own(s.record_id, s.outcome, s.has_usage, s.prompt, s.cache_hit,
                        s.cache_miss, s.completion, s.reasoning, s.time_zone)
  FROM (SELECT count(*) AS n FROM finalized) f, settlement s"""
)
"""The same and the settlement of its call, in ONE statement (one transaction, one round
trip): with :func:`finalize_params` followed by ``quota.settlement_params``. The settlement
runs whether or not this finalized the row (a call is this task's whoever now holds its
reply). A call settled already — by the reaper, from the text last checkpointed, while this
task lived; or by this very write, whose answer was lost — is brought to what it used,
charging the difference (``usage_resettle``, migration 0021: counts set, not added, so the
same write made again changes nothing). Only this task knows what its call used: its counts
are the truth whoever settled first."""


def finalize_params(
    reply_id: uuid.UUID,
    *,
    channel: str,
    status: str,
    content: str,
    reasoning: str,
    tool_calls: list[dict[str, Any]] | None,
    logprobs: dict[str, Any] | None,
    seq: int,
    finish_reason: str = "",
    usage: dict[str, Any] | None = None,
    error_code: str = "",
    error_message: str = "",
    record_id: int | None = None,
) -> list[Any]:
    """The parameters of :data:`FINALIZE_SQL`, in order (``record_id``: the task's own call,
    which makes the reply its own to write). Run from the event loop on the asyncio pool
    (``generation.GenerationTask._finish``)."""
    return [
        status,
        content,
        reasoning,
        _json_or_null(tool_calls),
        None if logprobs is None else Jsonb(logprobs),
        seq,
        finish_reason,
        None if usage is None else Jsonb(usage),
        error_code,
        error_message[:500],
        reply_id,
        channel,
        record_id,
    ]


def set_title(conversation_id: uuid.UUID, title: str) -> int | None:
    """Set the title unless someone named the conversation meanwhile: its owner's id when set
    (whose lists show the title), else None."""
    if not Conversation.objects.filter(pk=conversation_id, title="").update(title=title[:200]):
        return None
    return (
        Conversation.objects.filter(pk=conversation_id).values_list("owner_id", flat=True).first()
    )


def heartbeat(reply_ids: list[uuid.UUID]) -> None:
    if reply_ids:
        _execute_bound(
            "UPDATE conversations_message SET heartbeat_at = now()"
            " WHERE id = ANY(%s) AND status IN ('pending', 'streaming')",
            [reply_ids],
        )


def reap_stale_replies(
    older_than_seconds: float, alive: Iterable[uuid.UUID] = ()
) -> list[tuple[uuid.UUID, uuid.UUID, int]]:
    """Replies whose task stopped heartbeating (its process died) become ``interrupted``;
    never one of ``alive`` (the calling process's own running tasks, whatever their row says).

    Returns (conversation id, reply id, stored sequence number) of each reaped reply; their
    reservations are settled to an estimate of the text that had been checkpointed.
    """
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stale = Q(status__in=ACTIVE) & (Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))
    reaped: list[tuple[uuid.UUID, uuid.UUID, int]] = []
    for reply in (
        Message.objects.filter(stale)
        .exclude(pk__in=list(alive))
        .only("id", "conversation_id", "content", "reasoning", "seq")
    ):
        with transaction.atomic():
            # Still stale as it is written: a checkpoint or heartbeat since the read above
            # (its process slow, not dead) made it live again, and wrote newer text.
            if not Message.objects.filter(stale, pk=reply.pk).update(
                status=Message.Status.INTERRUPTED,
                error_code="worker_lost",
                error_message="The server handling this reply stopped; the text so far is kept.",
                heartbeat_at=None,
            ):
                continue
            written = reply.content + reply.reasoning
            calls = list(
                UsageRecord.objects.filter(quota.reserved_for_message(reply.pk)).values_list(
                    "pk", "output_base_chars"
                )
            )
            if not calls:
                calls = _taken_back_call(reply.pk)
            for record_id, base in calls:
                # A call settled by an earlier reap is settled again from the text kept now
                # (counts set, not added: ``usage_settle_own``).
                _execute_bound(
                    quota.SETTLE_OWN_SQL,
                    list(
                        quota.settlement_params(
                            record_id,
                            outcome=Message.Status.INTERRUPTED,
                            usage=None,
                            output_text=written[base:],  # a continuation: only its own text
                            # (and the reasoning, known as such for a first call only)
                            reasoning_text=reply.reasoning if base == 0 else "",
                        )
                    ),
                )
        reaped.append((reply.conversation_id, reply.pk, reply.seq))
    return reaped


def _taken_back_call(reply_id: uuid.UUID) -> list[tuple[int, int]]:
    """The reply's newest call if an earlier reap settled it (from an estimate, as
    interrupted) and its task, which lived on, took the row back (``CHECKPOINT_MANY_SQL``)
    before its process stopped after all: the row now holds more text than was charged."""
    newest = (
        UsageRecord.objects.filter(message_id=reply_id)
        .order_by("-pk")
        .values_list("pk", "output_base_chars", "state", "estimated", "outcome")
        .first()
    )
    if newest is None:
        return []
    record_id, base, state, estimated, outcome = newest
    reaped = state == UsageRecord.State.SETTLED and estimated
    return [(record_id, base)] if reaped and outcome == Message.Status.INTERRUPTED else []


def cancel_target(user: User, conversation_id: uuid.UUID | str, reply_id: Any) -> Message:
    """The reply to stop, if the user may post here and it may still be running: pending or
    streaming, or reaped while its task may live on (:func:`reaped_while_its_task_may_live`:
    its stop goes to that task, ``GenerationService.cancel``). One that has ended is a
    conflict naming its state (:func:`nothing_to_stop`)."""
    conversation = access.access_conversation_for_posting(user, conversation_id)
    reply = _message_in(conversation, reply_id, Message.Role.ASSISTANT, param="reply_id")
    if reply.status not in ACTIVE and not reaped_while_its_task_may_live(reply):
        raise nothing_to_stop(reply)
    return reply


def reaped_while_its_task_may_live(reply: Message) -> bool:
    """Whether the reaper gave up on the reply (``interrupted``, ``worker_lost``) while its task
    may still be running: its process cut off from the database for longer than
    ``GENERATION_STALE_SECONDS``, streaming on to the sockets it reaches, until its next
    checkpoint takes the row back (``CHECKPOINT_MANY_SQL``). Only the process of its
    generation channel can tell; a Stop (or its conversation's delete) is sent there, and
    stops the task if it lives. Not once the reply's last write is older than any upstream
    call may run (``UPSTREAM_DEADLINE``): its call had begun before that write."""
    return (
        reply.status == Message.Status.INTERRUPTED
        and reply.error_code == "worker_lost"
        and bool(reply.generation_channel)
        and reply.updated_at >= _upstream_calls_since()
    )


def reaped_while_their_tasks_may_live() -> Q:
    """The rows of :func:`reaped_while_its_task_may_live`, as a filter on messages."""
    return Q(
        status=Message.Status.INTERRUPTED,
        error_code="worker_lost",
        updated_at__gte=_upstream_calls_since(),
    ) & ~Q(generation_channel="")


def _upstream_calls_since() -> datetime:
    return timezone.now() - timedelta(seconds=settings.UPSTREAM_DEADLINE)


def nothing_to_stop(reply: Message) -> Conflict:
    """A Stop of a reply that has ended: the sender is told its state, rather than left waiting
    for a ``reply.failed`` that never comes (its end, already sent, was not the stop's doing)."""
    return Conflict(
        f"That reply has already ended ({reply.status}): there is nothing to stop.",
        param="reply_id",
        reply_id=str(reply.pk),
        status=reply.status,
    )


def reply_state(
    user: User, conversation_id: uuid.UUID | str, reply_id: Any, link_token: str | None = None
) -> Message:
    """The stored state of a reply the user may see (the snapshot when no task holds it),
    by visibility or through a live share link."""
    if not access.may_view(user, conversation_id, link_token):
        raise NotFound("No such conversation.")
    conversation = Conversation.objects.get(pk=conversation_id)
    return _message_in(conversation, reply_id, Message.Role.ASSISTANT, param="reply_id")


# The advisory lock class of :func:`title_admission`'s lock per conversation (ours, any int4).
_TITLE_CALL_LOCK = 0x7469746C


def title_admission(
    user_id: int,
    model: ModelConfig,
    conversation_id: uuid.UUID,
    prompt_tokens: int,
    max_tokens: int,
) -> UsageRecord | None:
    """Admit the small title call (its own ledger row), for ``max_tokens`` or the user's
    output cap if lower (:func:`quota.output_budget` of the row); None if the user may not
    spend now.

    Raises :class:`TitleNotNeeded` when the conversation was named meanwhile or another title
    call for it is running (two first replies ending together: one call, one charge)."""
    admission = quota.admission_params(
        user_id,
        model.pk,
        purpose=UsageRecord.Purpose.TITLE,
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        conversation_id=conversation_id,
    )
    with transaction.atomic():
        # Title calls of one conversation queue on a lock of their own, not on the
        # conversation's row: a message's admission locks the user's usage row and then
        # touches that row, so a title's holding it while waiting for the usage row deadlocked
        # with the user's next message sent as the first reply ended.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                [_TITLE_CALL_LOCK, str(conversation_id)],
            )
        if (
            not Conversation.objects.filter(pk=conversation_id, title="").exists()
            or UsageRecord.objects.filter(
                conversation_id=conversation_id,
                purpose=UsageRecord.Purpose.TITLE,
                state=UsageRecord.State.RESERVED,
            ).exists()
        ):
            raise TitleNotNeeded()
        try:
            return quota.run_admission(admission, within_cap=True)
        except ChatError:  # a refused title is not worth an error: the fallback title is used
            return None


class TitleNotNeeded(Exception):
    """The conversation has a title, or a title call for it is already running."""
