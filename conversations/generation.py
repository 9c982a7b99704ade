"""Generation tasks: one per reply, independent of the socket that asked for it.

A task streams from the upstream, keeps the whole reply in memory, publishes coalesced deltas
(the first at once, then at most every ``FLUSH_INTERVAL``) with a sequence number to the
conversation's group, checkpoints text and sequence to the database about once a second, and
finalizes exactly once. It knows nothing of websockets: it publishes events to a conversation
through the service.

Each process runs one :class:`GenerationService` per event loop. It owns a channel on the layer
so that any socket, on any worker, can ask it for a reply's snapshot or cancel it (and a
conversation's delete, anywhere, stops its replies: :func:`stop_replies`); it heartbeats the
rows of its running replies and reaps the rows other (dead) processes left streaming.

Fan-out: a group_send per frame to every socket's channel costs a walk of the in-memory layer or
a Redis round trip per socket. So the service keeps, per conversation, the sockets of this
process (a "room"): an event is handed to them directly, and goes through the channel layer
only to reach other processes — to the conversation's group, where each process with sockets in
the conversation has one relay channel (not one per socket) that hands what it hears to its own
sockets. An event carries the channel of the process that published it, so a process skips its
own events on its relay (its sockets had them already). Every socket thus gets every event once,
in the publisher's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import time
import uuid
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.signals import pre_delete
from django.dispatch import receiver

from chatsite import logs
from conversations import actions, pgpool, quota
from conversations.asyncdb import in_db_thread
from conversations.frames import CALL, SharedFrame
from conversations.models import Conversation, Message, User
from conversations.text import storable, storable_json
from conversations.upstream import (
    Completed,
    ContentDelta,
    Finish,
    LogprobsDelta,
    ModelTarget,
    ReasoningDelta,
    ToolCallDelta,
    UpstreamClient,
    UpstreamConfig,
    UpstreamError,
    Usage,
    aclose_shared_client,
)

logger = logging.getLogger("conversations.generation")

FLUSH_INTERVAL = 0.05
CHECKPOINT_INTERVAL = 1.0
SNAPSHOT_TIMEOUT = 2.0
# How long a process remembers a stop for a reply it does not hold (yet): the stop of a reply
# whose action has just committed can come before its task is started.
STOPPED_EARLY_SECONDS = 10.0
# The key under which a layer event names the generation channel of the process that sent it.
PUBLISHER = "publisher"


def group_name(conversation_id: uuid.UUID | str) -> str:
    return f"conversation.{uuid.UUID(str(conversation_id)).hex}"


def account_group(user_id: int) -> str:
    """The group of an account's own sockets (those on its conversations, not through a share
    link, and its socket on no conversation: the welcome page's): what its conversation lists
    show changes (``conversation.listed``, ``conversation.deleted``; and of the conversations
    others share with it: ``shared.listed``, ``shared.unlisted``), it was suspended or
    unsuspended (``account.updated``), and its session may have ended
    (``account.access_changed``)."""
    return f"account.{int(user_id)}"


def listed_event(conversation_id: uuid.UUID | str, title: str) -> dict[str, Any]:
    """The event telling an account's tabs how one of its conversations is listed now."""
    return {
        "type": "conversation.listed",
        "conversation": {"id": str(conversation_id), "title": title},
    }


def deleted_event(conversation_ids: Iterable[uuid.UUID | str]) -> dict[str, Any]:
    """The event telling an account's tabs that these conversations of its are deleted."""
    return {"type": "conversation.deleted", "ids": [str(pk) for pk in conversation_ids]}


def shared_listed_event(conversation_id: uuid.UUID | str, title: str, owner: str) -> dict[str, Any]:
    """The event telling an account's tabs how a conversation shared with it (another's) is
    listed now: new to it, or renamed."""
    return {
        "type": "shared.listed",
        "conversation": {"id": str(conversation_id), "title": title, "owner": owner},
    }


def account_updated_event(*, suspended: bool) -> dict[str, Any]:
    """The event telling an account's tabs that the admin suspended or unsuspended it: what
    they offer to send changes (the composer, the welcome page's notice and "Start chat")."""
    return {"type": "account.updated", "suspended": suspended}


def account_batch_event(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The event carrying several events of an account's group at once (their frames are sent
    in order: ``frames.account_frames``)."""
    from conversations.frames import ACCOUNT_BATCH

    return {"type": ACCOUNT_BATCH, "frames": events}


def unlisted_event(conversation_ids: Iterable[uuid.UUID | str]) -> dict[str, Any]:
    """The event telling an account's tabs that these conversations, shared with it until
    now, no longer are (made private, shared with another team, deleted)."""
    return {"type": "shared.unlisted", "ids": [str(pk) for pk in conversation_ids]}


_db = in_db_thread


def upstream_client() -> UpstreamClient:
    return UpstreamClient(
        UpstreamConfig(
            base_url=settings.DEEPSEEK_BASE_URL or "https://api.deepseek.com",
            api_key=settings.DEEPSEEK_API_KEY,
            connect_timeout=settings.UPSTREAM_CONNECT_TIMEOUT,
            idle_timeout=settings.UPSTREAM_IDLE_TIMEOUT,
            queue_timeout=settings.UPSTREAM_QUEUE_TIMEOUT,
            deadline=settings.UPSTREAM_DEADLINE,
            max_connections=settings.UPSTREAM_MAX_CONNECTIONS,
        )
    )


def target_of(model: Any, *, thinking: bool | None = None) -> ModelTarget:
    return ModelTarget(
        upstream_model=model.upstream_model,
        thinking=model.thinking if thinking is None else thinking,
        reasoning_passback=model.reasoning_passback,
        name=model.name,
    )


@dataclass
class _Pending:
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.content or self.reasoning or self.tool_calls or self.logprobs)


class GenerationTask:
    """Streams one reply. Its state is the truth while it runs; the row is the truth after."""

    def __init__(
        self,
        service: GenerationService,
        reply_id: uuid.UUID,
        conversation_id: uuid.UUID,
        context: actions.GenerationContext | None = None,
    ) -> None:
        self.service = service
        self._context = context
        self.reply_id = reply_id
        self.reply_key = str(reply_id)  # as frames carry it
        self.conversation_id = conversation_id
        self.group = group_name(conversation_id)
        self.content = ""
        self.reasoning = ""
        self.new_output_len = 0
        self.tool_calls: dict[int, dict[str, Any]] = {}
        # The tool calls as of the last published sequence number (what snapshots and
        # checkpoints show): fragments still pending are left to the next delta, like text.
        self.published_tool_calls: list[dict[str, Any]] = []
        # A continuation keeps the calls the reply had made; the upstream numbers its own
        # from 0 again, so they come after those.
        self._tool_index_base = 0
        self.logprobs: list[dict[str, Any]] = []
        self.seq = 0
        self.status = Message.Status.PENDING.value
        # (content length, reasoning length, logprobs count) after each sequence number, so a
        # socket holding sequence n can be sent exactly what came after it.
        self.offsets: dict[int, tuple[int, int, int]] = {}
        self._pending = _Pending()
        self._publish_lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        self._last_flush = 0.0
        self._last_checkpoint = self._loop.time()
        # When the row was last written (created or continued just now): the heartbeat skips
        # rows that checkpoints keep fresh.
        self.last_write = self._last_checkpoint
        self._flush_handle: asyncio.TimerHandle | None = None
        self._stop_reason: str | None = None  # "cancelled" or "shutdown"
        # The reply's call this task makes (its ledger row): what makes the row its own to
        # write (``actions.CHECKPOINT_MANY_SQL``), until a continuation makes a newer one.
        self.record_id = context.record_id if context is not None else None
        # A newer call of the reply has begun (a continuation): this task stops, and the
        # reply's frames are no longer its own to publish.
        self.superseded = False
        # The reaper gave up on the reply while this task lived, and its call may not run on
        # (its worst case or stream slot no longer fits the user's limits, or the account may
        # not send now: ``actions.CHECKPOINT_MANY_SQL``): the reply stays
        # as the reaper left it, and this task stops at once, writing nothing of it; its call
        # is only settled again to what it really used (``_settle_as_the_reaper_left_it``).
        self.left_to_the_reaper = False
        self._began = False
        self.task: asyncio.Task[None] | None = None

    # -- control ---------------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Cancel the upstream call; the task then finalizes with what it has. (A task whose
        run has not begun is not cancelled, which would skip its body: it sees the reason when
        it begins, and finalizes the reply as stopped.)"""
        if self._stop_reason is None:
            self._stop_reason = reason
        if self._began and self.task is not None and not self.task.done():
            self.task.cancel()

    def give_way(self) -> None:
        """A continuation of the reply has begun (a newer call, here or on another worker,
        after the reaper gave up on this task while its process was cut off from the
        database): stop at once and publish nothing more. The call is still settled to what
        it used; the row, no longer this task's, is not written (``actions._the_tasks_to_write``)."""
        self.superseded = True
        self.stop("cancelled")

    def leave_to_the_reaper(self) -> None:
        """The reaper's end of the reply stands and its call could not be held again (its
        worst case or its stream slot no longer fits the user's limits, or the account was
        suspended or deactivated meanwhile): stop at once (nothing more is
        spent), publish nothing more, and leave the row as the reaper left it. The call is
        still settled to what it used, which the reaper could not know."""
        self.left_to_the_reaper = True
        self.give_way()

    def _check_stopped(self) -> None:
        """Raise the stop that a library under an await may have swallowed: on Python 3.11,
        ``asyncio.wait_for`` (redis-py's every write to Redis, so every delta's publish)
        returns its result instead of raising a cancellation that lands just as the write
        completes, and the reply would otherwise stream on to its end."""
        if self._stop_reason is not None:
            raise asyncio.CancelledError

    def snapshot(self, after_seq: int = 0) -> dict[str, Any]:
        """The reply up to the last published sequence number (text and tool-call fragments
        still pending are left to the next delta), whole or only what came after ``after_seq``
        when that is known (tool calls: always whole)."""
        end_content, end_reasoning, end_logprobs = self.offsets.get(
            self.seq, (len(self.content), len(self.reasoning), len(self.logprobs))
        )
        frame: dict[str, Any] = {
            "type": "reply.snapshot",
            "reply_id": self.reply_key,
            "seq": self.seq,
            "status": self.status,
            "tool_calls": self.published_tool_calls,
        }
        start = self.offsets.get(after_seq) if 0 < after_seq <= self.seq else None
        if start is None:
            frame.update(mode="full")
            start = (0, 0, 0)
        else:
            frame.update(mode="append", after_seq=after_seq)
        frame.update(
            content=self.content[start[0] : end_content],
            reasoning=self.reasoning[start[1] : end_reasoning],
            logprobs=self.logprobs[start[2] : end_logprobs],
        )
        return self._named(frame)

    # -- the stream --------------------------------------------------------------------------

    async def run(self) -> None:
        self._began = True
        logs.bind(request_id=f"gen-{self.reply_id.hex[:8]}")
        try:
            context = self._context or await self._load_context()
        except Message.DoesNotExist:
            self.service.forget(self)
            return
        except Exception:
            # The row stays as it was; with no task holding it its heartbeat stops, and the
            # reaper marks it interrupted (and settles its reservation) within a minute.
            logger.exception("reply %s: could not read what to generate", self.reply_id)
            self.service.forget(self)
            return
        logs.bind(user_id=context.user_id)
        self.record_id = context.record_id
        self._start_from(context)
        base_len = len(self.content) + len(self.reasoning)
        # (A continuation's call is charged only its own output, its reasoning included.)
        base_reasoning = len(self.reasoning)
        outcome: dict[str, Any] = {"status": Message.Status.COMPLETE.value}
        requested = False
        try:
            if self._stop_reason is not None:
                raise asyncio.CancelledError  # stopped while the context was read
            self.status = Message.Status.STREAMING.value
            await self._publish(
                {"type": "reply.started", "reply_id": self.reply_key, "seq": self.seq}
            )
            # Continuing a cut-off reply uses the upstream's prefix completion (its beta path).
            requested = True
            stream = self.service.client.stream_chat(
                target_of(context.model), context.messages, context.params, beta=context.prefix
            )
            # A chunk's logprobs come as the event right after its text (handed over with no
            # wait between them): a delta waits for them, so it carries the logprobs of its
            # own text (the first one too). Only until the loop next turns, though: a
            # provider may send none (one that ignores the parameter, or empty lists), and
            # the text then goes out on its own, as promptly, and is checkpointed.
            with_logprobs = bool(context.params.get("logprobs"))
            async with contextlib.aclosing(stream):
                async for event in stream:
                    self._check_stopped()
                    # Text is kept as it can be stored (no NUL: PostgreSQL text cannot hold it).
                    if isinstance(event, ContentDelta):
                        piece = storable(event.text)
                        self.content += piece
                        self._pending.content.append(piece)
                        if with_logprobs:
                            self._flush_soon()
                            continue
                    elif isinstance(event, ReasoningDelta):
                        piece = storable(event.text)
                        self.reasoning += piece
                        self._pending.reasoning.append(piece)
                        if with_logprobs:
                            self._flush_soon()
                            continue
                    elif isinstance(event, ToolCallDelta):
                        self._add_tool_fragment(event)
                    elif isinstance(event, LogprobsDelta):
                        entries = storable_json(event.content)
                        self.logprobs.extend(entries)
                        self._pending.logprobs.extend(entries)
                    elif isinstance(event, Finish):
                        outcome["finish_reason"] = event.reason
                    elif isinstance(event, Usage):
                        outcome["usage"] = event.usage
                    elif isinstance(event, Completed):
                        outcome.setdefault("usage", event.result.usage)
                        outcome.setdefault("finish_reason", event.result.finish_reason or "")
                        continue
                    await self._delta_arrived()
                    self._check_stopped()
        except asyncio.CancelledError as stop:
            # The provider's own count, when it had come (its chunk before the end of the
            # stream, or the closing events already handed over): charged instead of an estimate.
            partial = getattr(stop, "partial", None)
            usage = outcome.get("usage") or (partial.usage if partial is not None else None)
            if self._stop_reason == "cancelled":
                outcome = {
                    "status": Message.Status.CANCELLED.value,
                    "error_code": "cancelled",
                    "error_message": "Stopped.",
                }
            else:
                outcome = {
                    "status": Message.Status.INTERRUPTED.value,
                    "error_code": "server_restart",
                    "error_message": "The server restarted while answering; the text so far is kept.",
                }
            if not requested:  # stopped before the call was made: nothing to charge
                outcome["settle_usage"] = quota.NOTHING_USED
            elif usage:
                outcome["usage"] = usage
        except UpstreamError as error:
            started = (
                len(self.content) + len(self.reasoning) > base_len
                or len(self.tool_calls) > self._tool_index_base
            )
            if error.partial is not None and error.partial.usage:
                outcome["usage"] = error.partial.usage
            elif not started and not error.billed:  # refused, or never taken: not billed
                outcome["settle_usage"] = quota.NOTHING_USED
            # A reply with text (this call's, or a continued reply's from before) keeps it,
            # interrupted and continuable; only one with nothing at all has failed.
            kept = started or bool(self.content or self.reasoning or self.tool_calls)
            outcome.update(
                status=(Message.Status.INTERRUPTED if kept else Message.Status.FAILED).value,
                error_code=error.code,
                error_message=error.message,
            )
            logger.warning("reply %s %s: %s", self.reply_id, outcome["status"], error.code)
        except Exception:
            logger.exception("reply %s failed", self.reply_id)
            outcome = {
                "status": Message.Status.FAILED.value,
                "error_code": "internal_error",
                "error_message": "Something went wrong on our side.",
            }
        await asyncio.shield(self._finish(context, outcome, base_len, base_reasoning))

    def _start_from(self, context: actions.GenerationContext) -> None:
        """Hold what the reply already has (a continuation extends it, never replaces it)."""
        self.content, self.reasoning, self.seq = context.content, context.reasoning, context.seq
        self.logprobs = list(context.logprobs)
        for index, call in enumerate(context.tool_calls):
            self.tool_calls[index] = {
                "index": index,
                "id": call.get("id", ""),
                "type": "function",
                "function": {"name": "", "arguments": "", **call.get("function", {})},
            }
        self._tool_index_base = len(self.tool_calls)
        self.published_tool_calls = self._tool_calls_list()
        self.offsets[self.seq] = (len(self.content), len(self.reasoning), len(self.logprobs))

    async def _load_context(self) -> actions.GenerationContext:
        """The reply's context from the database (a continuation, a restart), read to the end
        even when the task is stopped meanwhile (Stop right after Continue): the stop is then
        finalized like any other, instead of leaving the row pending."""
        load = asyncio.ensure_future(_db(actions.load_generation_context)(self.reply_id))
        while True:
            try:
                return await asyncio.shield(load)
            except asyncio.CancelledError:
                if self._stop_reason is None:
                    load.cancel()
                    raise  # not a stop of ours: the task itself is going away
                continue

    async def _finish(
        self,
        context: actions.GenerationContext,
        outcome: dict[str, Any],
        base_len: int,
        base_reasoning: int,
    ) -> None:
        try:
            await self.flush()
            new_output = (self.content + self.reasoning)[base_len:] + self._new_tool_call_text()
            usage = outcome.get("settle_usage", outcome.get("usage"))
            if self.left_to_the_reaper:
                self.status = Message.Status.INTERRUPTED.value
                if context.record_id is not None:
                    await self._settle_as_the_reaper_left_it(
                        context.record_id, usage, new_output, self.reasoning[base_reasoning:]
                    )
                return
            self.status = outcome["status"]
            final = actions.finalize_params(
                self.reply_id,
                channel=self.service.channel,
                status=self.status,
                content=self.content,
                reasoning=self.reasoning,
                tool_calls=self._tool_calls_list(),
                logprobs={"content": self.logprobs} if self.logprobs else None,
                seq=self.seq,
                finish_reason=outcome.get("finish_reason") or "",
                usage=outcome.get("usage"),
                error_code=outcome.get("error_code", ""),
                error_message=outcome.get("error_message", ""),
                record_id=context.record_id,
            )
            # The final state and the call's settlement: one statement on the event loop's
            # pool (no ORM thread, one round trip instead of a transaction's four).
            if context.record_id is None:
                row = await _final_write(actions.FINALIZE_SQL, final)
            else:
                settlement = quota.settlement_params(
                    context.record_id,
                    outcome=self.status,
                    usage=usage,
                    output_text=new_output,
                    reasoning_text=self.reasoning[base_reasoning:],
                )
                row = await _final_write(actions.FINALIZE_AND_SETTLE_SQL, [*final, *settlement])
            finalized = bool(row and row[0])
            if finalized:
                frame: dict[str, Any] = {
                    "reply_id": self.reply_key,
                    "seq": self.seq,
                    "status": self.status,
                    "charged": await charges_of_reply(self.reply_id),
                }
                if self.status == Message.Status.COMPLETE:
                    frame.update(
                        type="reply.completed",
                        finish_reason=outcome.get("finish_reason") or "",
                        usage=outcome.get("usage"),
                    )
                else:
                    frame.update(
                        type="reply.failed",
                        code=outcome.get("error_code", ""),
                        message=outcome.get("error_message", ""),
                    )
                await self._publish(frame)
        finally:
            self.service.forget(self)
        # Whatever the first reply's end (complete, stopped, cut off, failed), the conversation
        # is named: left untitled, it stayed "New chat" for good.
        if context.needs_title:
            written = self.content or self.reasoning or self._new_tool_call_text()
            self.service.spawn(generate_title(self.service, context, written))

    async def _settle_as_the_reaper_left_it(
        self,
        record_id: int,
        usage: Mapping[str, Any] | None,
        output_text: str,
        reasoning_text: str,
    ) -> None:
        """The call of a reply left to the reaper, settled to what it really used: the reaper
        charged only the text last checkpointed, while this task streamed on through the
        outage (every token of it billed upstream). The reply's row stays as the reaper left
        it; the call keeps its outcome (``interrupted``) and is brought to the provider's
        counts, or to the estimate of the whole text received — as the final write would
        (``usage_settle_own``: counts set, not added, so a try whose answer was lost, made
        again, changes nothing). What was spent is charged even past the day's or month's
        limit: it was spent; only holding the worst case again was refused."""
        settlement = quota.settlement_params(
            record_id,
            outcome=Message.Status.INTERRUPTED.value,
            usage=usage,
            output_text=output_text,
            reasoning_text=reasoning_text,
        )
        await _final_write(quota.SETTLE_OWN_SQL, list(settlement))

    # -- coalescing --------------------------------------------------------------------------

    def _add_tool_fragment(self, event: ToolCallDelta) -> None:
        index = self._tool_index_base + event.index
        call = self.tool_calls.setdefault(
            index,
            {
                "index": index,
                "id": "",
                "type": "function",
                "function": {"name": "", "arguments": ""},
            },
        )
        arguments = storable(event.arguments_fragment)
        if event.id:
            call["id"] = storable(event.id)
        if event.name:
            call["function"]["name"] = storable(event.name)
        call["function"]["arguments"] += arguments
        fragment: dict[str, Any] = {"index": index, "arguments": arguments}
        if event.id:
            fragment["id"] = call["id"]
        if event.name:
            fragment["name"] = call["function"]["name"]
        self._pending.tool_calls.append(fragment)

    def _new_tool_call_text(self) -> str:
        """The names and arguments of the tool calls this run made (output tokens too), for
        estimating what it used when the upstream sent no usage."""
        return "".join(
            call["function"]["name"] + call["function"]["arguments"]
            for index, call in sorted(self.tool_calls.items())
            if index >= self._tool_index_base
        )

    def _tool_calls_list(self) -> list[dict[str, Any]]:
        return [
            {"id": c["id"], "type": "function", "function": dict(c["function"])}
            for _, c in sorted(self.tool_calls.items())
        ]

    async def _delta_arrived(self) -> None:
        if self._loop.time() - self._last_flush >= FLUSH_INTERVAL:
            await self.flush()
        else:
            self._flush_soon()

    def _flush_soon(self) -> None:
        """Flush when the interval since the last flush is over, and not before the loop
        turns (at its next turn if it is over already)."""
        if self._flush_handle is None:
            delay = FLUSH_INTERVAL - (self._loop.time() - self._last_flush)
            self._flush_handle = self._loop.call_later(max(delay, 0.0), self._flush_later)

    def _flush_later(self) -> None:
        self._flush_handle = None
        self.service.spawn(self.flush())

    async def flush(self) -> None:
        """Publish what arrived since the last flush as one delta; checkpoint when due."""
        async with self._publish_lock:
            if self._flush_handle is not None:
                self._flush_handle.cancel()
                self._flush_handle = None
            pending, self._pending = self._pending, _Pending()
            if not pending:
                return
            self.seq += 1
            self._last_flush = self._loop.time()
            self.offsets[self.seq] = (len(self.content), len(self.reasoning), len(self.logprobs))
            frame: dict[str, Any] = {
                "type": "reply.delta",
                "reply_id": self.reply_key,
                "seq": self.seq,
            }
            if pending.content:
                frame["content"] = "".join(pending.content)
            if pending.reasoning:
                frame["reasoning"] = "".join(pending.reasoning)
            if pending.tool_calls:
                frame["tool_calls"] = pending.tool_calls
                self.published_tool_calls = self._tool_calls_list()
            if pending.logprobs:
                frame["logprobs"] = pending.logprobs
            checkpoint = None
            if self._last_flush - self._last_checkpoint >= CHECKPOINT_INTERVAL:
                self._last_checkpoint = self._last_flush  # last_write: once it is written
                # Taken before the publish is awaited: the stream appends text meanwhile, and a
                # checkpoint holds exactly the text up to its sequence number (a page loaded
                # from the row syncs from that number and must get the rest once).
                checkpoint = actions.checkpoint(
                    self.reply_id,
                    content=self.content,
                    reasoning=self.reasoning,
                    tool_calls=self.published_tool_calls,
                    seq=self.seq,
                    record_id=self.record_id,
                )
            if self.superseded:
                return  # the reply's frames are its continuation's now
            await self.service.publish(self.group, self._named(frame))
            if checkpoint is not None:
                # Handed to the process's checkpoint writer, not awaited: a stream's deltas
                # never wait on the database.
                self.service.checkpoints.add(checkpoint)

    async def _publish(self, frame: dict[str, Any]) -> None:
        async with self._publish_lock:
            if not self.superseded:
                await self.service.publish(self.group, self._named(frame))

    def _named(self, frame: dict[str, Any]) -> dict[str, Any]:
        """``frame`` naming this task's call (``frames.CALL``), when it has one."""
        if self.record_id is not None:
            frame[CALL] = self.record_id
        return frame


_TITLE_PROMPT = (
    "Write a short title (at most six words) for a conversation that starts with the message "
    "below. Answer with the title only, no quotes, no punctuation at the end."
)


def fallback_title(text: str) -> str:
    words = re.sub(r"\s+", " ", re.sub(r"\[\[sim:[^\]]*\]\]", "", text)).strip().split(" ")
    title = " ".join(words[:8])
    return (title[:77] + "…") if len(title) > 80 else (title or "New chat")


def clean_title(raw: str) -> str:
    """The model's title as plain text: its first line, without markdown marks (the sidebar
    shows titles as written), a "Title:" label, surrounding quotes or a final full stop."""
    line = next((line for line in raw.splitlines() if line.strip()), "")
    line = re.sub(r"^\s*(#+|[-*>]\s)\s*", "", line)  # a heading, list item or quote
    line = re.sub(r"(\*\*|__|`|~~)", "", line)  # bold, code, strikethrough
    line = re.sub(r"^\s*title\s*:\s*", "", line, flags=re.IGNORECASE)
    title = re.sub(r"\s+", " ", line).strip().strip("\"'\u201c\u201d\u2018\u2019*_").strip()
    return title.rstrip(".")[:80]


async def generate_title(
    service: GenerationService, context: actions.GenerationContext, reply_text: str
) -> None:
    """A small upstream call names the conversation; its own ledger row (purpose ``title``).
    ``reply_text``: what the first reply wrote (text, reasoning or a tool call); a reply that
    wrote nothing (stopped or failed before any) is not worth a call: the first words of the
    user's message name the conversation, as they do when the call fails, and as they do in a
    process shutting down."""
    from conversations.quota import estimate_prompt_tokens

    if not reply_text.strip() or not service.accepting:
        # (A process shutting down starts no call: nothing would wait for it to be settled.)
        await _name_conversation(
            service, context.conversation_id, fallback_title(context.first_user_text)
        )
        return

    messages = [
        {"role": "system", "content": _TITLE_PROMPT},
        {"role": "user", "content": context.first_user_text[:2000]},
    ]
    max_tokens = 24
    title = ""
    try:
        record = await _db(actions.title_admission)(
            context.user_id,
            context.model,
            context.conversation_id,
            estimate_prompt_tokens(messages),
            max_tokens,
        )
    except actions.TitleNotNeeded:
        return
    if record is not None:
        usage = None
        outcome = "failed"
        try:
            result = await service.client.complete_chat(
                target_of(context.model, thinking=False),
                messages,
                # The user's output cap, if lower, shortens the title (what was reserved).
                {"max_tokens": quota.output_budget(record), "temperature": 0.3},
            )
            title, usage, outcome = clean_title(result.text), result.usage, "complete"
        except UpstreamError as error:
            logger.info("title call failed: %s", error.code)
            if not error.billed:  # refused, or never taken: not billed, as a reply's
                usage = dict(quota.NOTHING_USED)
        # What the provider billed is only in memory here: the settlement waits out an outage.
        settlement = quota.settlement_params(
            record.pk, outcome=outcome, usage=usage, output_text=title
        )
        await pgpool.outlasting_outage(
            "title settlement", lambda: pgpool.fetch_one(quota.SETTLE_OWN_SQL, settlement)
        )
    await _name_conversation(
        service, context.conversation_id, title or fallback_title(context.first_user_text)
    )


async def _name_conversation(
    service: GenerationService, conversation_id: uuid.UUID, title: str
) -> None:
    """The title set unless someone named the conversation meanwhile, then announced to its
    open pages (``conversation.updated``) and to the lists that show it."""
    owner_id = await _db(actions.set_title)(conversation_id, title)
    if owner_id is not None:
        await service.publish(
            group_name(conversation_id), {"type": "conversation.updated", "title": title}
        )
        await service.publish(account_group(owner_id), listed_event(conversation_id, title))
        await _announce_shared_title(service, conversation_id)


async def _announce_shared_title(service: GenerationService, conversation_id: uuid.UUID) -> None:
    """The accounts a newly named conversation is already shared with list it under its title
    (most new conversations are private: one statement, nothing sent)."""
    from conversations.sharing import shared_listings

    listing = (await _db(shared_listings)([conversation_id])).get(conversation_id)
    if listing is None:
        return
    event = shared_listed_event(conversation_id, listing.title, listing.owner)
    for user_id in listing.viewers:
        await service.publish(account_group(user_id), event)


class LocalSocket(Protocol):
    """A socket of this process in a conversation (the consumer)."""

    async def deliver(self, event: dict[str, Any]) -> None: ...


def _restarting(socket: LocalSocket) -> Awaitable[None] | None:
    """The close of a socket whose process is shutting down (its ``restarting``), if it has one."""
    restarting = getattr(socket, "restarting", None)
    return restarting() if restarting is not None else None


class _Room:
    """The sockets of one conversation in this process, and the relay channel through which
    this process hears the conversation's events from others."""

    __slots__ = ("channel", "ready", "relay", "sockets")

    def __init__(self) -> None:
        self.sockets: dict[LocalSocket, None] = {}  # an ordered set
        self.channel = ""
        self.ready = asyncio.Event()
        self.relay: asyncio.Task[None] | None = None


class FrameBudget:
    """How many frames a holder's sockets may have answered: at most ``burst`` at once, given
    back at ``per_second`` (a token bucket, in memory: nothing is asked of the database to keep
    it). One per holder and process, shared by all its sockets: opening more sockets gives no
    more frames."""

    __slots__ = ("at", "burst", "left", "per_second")

    def __init__(self, burst: float, per_second: float) -> None:
        self.burst, self.per_second = burst, per_second
        self.left = burst
        self.at = time.monotonic()

    def take(self) -> float:
        """0 if a frame may be answered now (and it is counted), else the seconds until one
        may."""
        now = time.monotonic()
        self.left = min(self.burst, self.left + (now - self.at) * self.per_second)
        self.at = now
        if self.left >= 1:
            self.left -= 1
            return 0.0
        return (1 - self.left) / self.per_second

    def full(self) -> bool:
        return self.left + (time.monotonic() - self.at) * self.per_second >= self.burst


# A page sends a frame when its user acts, a sync when a reply it shows was missed (after a
# reconnect, one per reply then running), a ping each half minute (pings are not counted): far
# below either budget. An account may hold WEBSOCKETS_PER_ACCOUNT (100) sockets in a process
# and send on each at once (a script's concurrent requests, which the limits then judge): its
# burst is twice that. An anonymous viewer of a public link only reads.
ACCOUNT_FRAMES_AT_ONCE, ACCOUNT_FRAMES_PER_SECOND = 200, 10.0
ADDRESS_FRAMES_AT_ONCE, ADDRESS_FRAMES_PER_SECOND = 10, 1.0


class SocketPlaces:
    """How many sockets each holder (an account, or an anonymous client's address) has open in
    this process, up to a limit per holder: each socket holds memory and a channel group, and
    one client opening thousands would exhaust the worker. Counted on the event loop with no
    await between a count's check and its change, so two sockets cannot both take the last
    place."""

    def __init__(self) -> None:
        self.held: dict[str, int] = {}
        # Each holder's frames (kept past its last socket while not full again: closing and
        # opening sockets gives no fresh budget).
        self.frames: dict[str, FrameBudget] = {}

    def frames_wait(self, holder: str) -> float:
        """0 if a frame of ``holder`` may be answered now (counted), else the seconds until
        one may (:class:`FrameBudget`)."""
        budget = self.frames.get(holder)
        if budget is None:
            if holder.startswith("account:"):
                budget = FrameBudget(ACCOUNT_FRAMES_AT_ONCE, ACCOUNT_FRAMES_PER_SECOND)
            else:
                budget = FrameBudget(ADDRESS_FRAMES_AT_ONCE, ADDRESS_FRAMES_PER_SECOND)
            self.frames[holder] = budget
        return budget.take()

    def take(self, holder: str, limit: int) -> bool:
        """A place for one more socket of ``holder``; False when it holds ``limit`` already."""
        held = self.held.get(holder, 0)
        if held >= limit:
            return False
        self.held[holder] = held + 1
        return True

    def free(self, holder: str) -> None:
        held = self.held.get(holder, 0) - 1
        if held > 0:
            self.held[holder] = held
        else:
            self.held.pop(holder, None)
            if len(self.frames) > len(self.held) + 1000:  # those of holders gone, once full
                for gone in [h for h, b in self.frames.items() if h not in self.held and b.full()]:
                    del self.frames[gone]


async def _final_write(sql: str, params: list[Any]) -> tuple[Any, ...] | None:
    """A reply's final write, tried again for as long as the database cannot be reached (a
    restart, an upgrade): the whole reply is only in this task's memory, which stays
    registered and heartbeated meanwhile, so neither this process's reaper nor another's
    settles the reply from its last checkpoint. If this process alone was cut off, for longer
    than ``GENERATION_STALE_SECONDS``, another's reaper does: the write, once it gets through,
    still wins over the reaper's (``actions.FINALIZE_SQL``) and charges what the call used.
    Only SIGTERM's grace period (the process goes away) ends the wait; the reaper then keeps
    what was checkpointed."""
    return await pgpool.outlasting_outage("final write", lambda: pgpool.fetch_one(sql, params))


async def charges_of_reply(reply_id: uuid.UUID) -> quota.ReplyCharges | None:
    """What the reply's calls were charged, now that its own is settled (its Usage panel):
    None if none was, or if the database cannot say now (the page's data says it later)."""
    try:
        row = await pgpool.fetch_one(quota.REPLY_CHARGES_SQL, [[str(reply_id)]])
    except Exception as error:
        logger.warning(
            "reading what reply %s was charged failed: %s", reply_id, type(error).__name__
        )
        return None
    return quota.reply_charges(row)[1] if row else None


def reaped_end(
    reply_id: uuid.UUID, seq: int, charged: quota.ReplyCharges | None = None
) -> dict[str, Any]:
    """The reaper's end of a reply whose process stopped heartbeating (``charged``: what its
    calls were charged, the reaper's settlement included)."""
    return {
        "type": "reply.failed",
        "reply_id": str(reply_id),
        # What the row holds: a socket sent more (deltas published after the last
        # checkpoint, then lost with the process) is sent the stored reply instead.
        "seq": seq,
        "status": Message.Status.INTERRUPTED.value,
        "code": "worker_lost",
        "message": "The server handling this reply stopped; the text so far is kept.",
        "charged": charged,
    }


class _Checkpoints:
    """Group write of the process's checkpoints: streams hand in their latest state, and one
    statement writes every state handed in since the previous one (each reply's newest only),
    on the event loop's pool. At 500 streams that is ~10 statements a second instead of 500,
    and no stream waits for its own. A write that fails is logged and skipped: the reply's
    next checkpoint, a second later, or its final write carries the whole text again.

    A checkpoint refused because its reply's row is no longer its task's at all (a newer call,
    or another worker's channel: a continuation begun while ``generation.superseded`` could not
    reach this worker) makes that task give way, as the word would have: about a second after
    the continuation began, instead of streaming on unseen and paying its whole call. A write
    that fails (the database out of reach) tells nothing, and stops no task.

    While the database is unavailable the log says so once, when the first write fails, and
    once when a write succeeds again, not at every write (one a second). A failed group write
    is tried reply by reply (one reply's row, locked or bad, must not hold back the others'),
    but not while the pool cannot connect at all: each would wait its acquire timeout in vain."""

    def __init__(self, service: GenerationService) -> None:
        self.service = service
        self.due: dict[uuid.UUID, actions.Checkpoint] = {}
        self.writing: asyncio.Task[None] | None = None
        # Since when the database has been out of reach (loop time), and the writes lost.
        self.out_of_reach_since: float | None = None
        self.lost_while_out_of_reach = 0

    def add(self, state: actions.Checkpoint) -> None:
        self.due[state[0]] = state
        if self.writing is None:
            self.writing = self.service.spawn(self._write())

    async def _write(self) -> None:
        try:
            while self.due:
                batch, self.due = list(self.due.values()), {}
                lost = await self._save(batch)
                if lost is None and len(batch) > 1 and not pgpool.out_of_reach():
                    # One reply's state must not keep the others unsaved: each on its own.
                    each = [(state, await self._save([state])) for state in batch]
                    written = [state for state, lost_one in each if lost_one is not None]
                    lost = {
                        reply: row
                        for _, lost_one in each
                        for reply, row in (lost_one or {}).items()
                    }
                else:
                    written = batch if lost is not None else []
                now = asyncio.get_running_loop().time()
                for state in written:
                    task = self.service.tasks.get(state[0])
                    if task is None or task.record_id != state[5]:
                        continue  # ended, or a newer call's task holds the reply here now
                    if lost and state[0] in lost:
                        if not task.superseded:
                            await self._give_way(task, *lost[state[0]])
                    else:
                        task.last_write = now  # the heartbeat may skip it for a while
        finally:
            self.writing = None

    async def _give_way(
        self, task: GenerationTask, reaped: bool, stored_seq: int, left_to_the_reaper: bool
    ) -> None:
        """``task``'s reply is no longer its own to write: it stops. A reply continued
        elsewhere ends as its continuation says. One the reaper ended, which the conversation
        has gone on from since, or whose call the user's limits could not hold again
        (``left_to_the_reaper``: its task then only settles what its call used), ends as the
        reaper said:
        this process's sockets, which waited on the living task instead
        (``ConversationConsumer._relay``), hear that end now, and are sent the text it kept
        (``stored_seq``: the row's)."""
        if left_to_the_reaper:
            task.leave_to_the_reaper()
            logger.warning(
                "reply %s was reaped and its call may not run on (the user's limits):"
                " its task gives way",
                task.reply_id,
            )
        elif reaped:
            task.give_way()
            logger.warning(
                "reply %s was reaped and gone on from: its task gives way", task.reply_id
            )
        else:
            task.give_way()
            logger.warning(
                "reply %s was continued elsewhere: its older call gives way", task.reply_id
            )
            return
        room = self.service.rooms.get(task.group)
        if room is None or not room.sockets:
            return
        if left_to_the_reaper:
            # Told once the task has settled its call, so the end says what it was charged
            # (its own task: this writer does not wait on it).
            self.service.spawn(self._tell_the_reapers_end(room, task, stored_seq, settled=True))
            return
        await self._tell_the_reapers_end(room, task, stored_seq, settled=False)

    async def _tell_the_reapers_end(
        self, room: _Room, task: GenerationTask, stored_seq: int, *, settled: bool
    ) -> None:
        """The reaper's end, with what the reply's calls were charged (``settled``: once its
        task has ended, its own settlement included)."""
        if settled and task.task is not None:
            await asyncio.wait([task.task])
        charged = await charges_of_reply(task.reply_id)
        await self.service.hand_out(
            room, SharedFrame(reaped_end(task.reply_id, stored_seq, charged))
        )

    async def _save(
        self, batch: list[actions.Checkpoint]
    ) -> dict[uuid.UUID, tuple[bool, int, bool]] | None:
        """``batch`` saved in one statement (all of it that is still its tasks' to write): the
        replies whose rows are no longer their tasks' at all, each with whether the reaper's
        end stands, the row's sequence number, and whether the call stays as the reaper
        settled it; None if the statement failed (logged), when nothing is known of any."""
        now = asyncio.get_running_loop().time
        try:
            rows = await pgpool.fetch_all(
                actions.CHECKPOINT_MANY_SQL,
                [*actions.checkpoint_columns(batch), self.service.channel],
            )
        except pgpool.DatabaseUnavailable:
            if self.out_of_reach_since is None:
                self.out_of_reach_since = now()
                logger.warning(
                    "checkpoints cannot be written, the database is unavailable: each reply's"
                    " next one, or its final write, will carry its whole text"
                )
            self.lost_while_out_of_reach += 1
            return None
        except Exception as error:
            logger.warning("checkpoint of %d replies failed: %s", len(batch), type(error).__name__)
            return None
        if self.out_of_reach_since is not None:
            logger.info(
                "checkpoints are written again, %.0fs after the first that failed (%d lost)",
                now() - self.out_of_reach_since,
                self.lost_while_out_of_reach,
            )
            self.out_of_reach_since, self.lost_while_out_of_reach = None, 0
        return {row[0]: (row[1], row[2], row[3]) for row in rows}


def _cancelled_all_the_same(error: Exception) -> None:
    """Raise CancelledError if the current task is being cancelled though the channel layer
    raised ``error``: a Redis client's own timeout meeting a cancellation turns it into a
    TimeoutError, and taken for Redis being away, the cancellation was lost."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from error


class GenerationService:
    """The process's generation tasks, reachable from any worker through ``channel``, the
    process's sockets per conversation, to which events are handed directly, and the places
    each account or anonymous address holds among them."""

    def __init__(self) -> None:
        layer = get_channel_layer()
        assert layer is not None, "CHANNEL_LAYERS is not configured"
        self.layer: BaseChannelLayer = layer
        # The in-memory layer cannot reach another process: nothing to send through it.
        self.single_process = isinstance(layer, InMemoryChannelLayer)
        self.layer_down = False  # the last publish to other processes failed
        self.rooms: dict[str, _Room] = {}
        self.places = SocketPlaces()
        self.client = upstream_client()
        self.tasks: dict[uuid.UUID, GenerationTask] = {}
        self.background: set[asyncio.Task[Any]] = set()
        self.checkpoints = _Checkpoints(self)
        self.accepting = True
        # The API's chat completions running in this process (each call's task of its own,
        # ``api_asgi._serve_call``): a shutdown waits for them as for replies, then ends the
        # rest.
        self.api_calls: set[asyncio.Task[Any]] = set()
        self.api_calls_ending = False  # the grace is over: the API's calls are being ended
        # Turn-starting actions under way, until their reply is started (``consumers``
        # ``_run_turn``): a shutdown lets them commit and start it, then waits for it too.
        self.turns: set[asyncio.Future[Any]] = set()
        self._drain_hooked = False
        self.channel = ""
        self._started = False
        # Started with the server's process (start_with_the_server): its first heartbeat pass
        # runs at once, so the first reaping pass comes one interval after start. Started by a
        # first connection (tests, other servers), it waits an interval as every pass does.
        self.first_pass_at_once = False
        # Stops for replies of this process whose task was not started yet: reply id → when.
        self.stopped_early: dict[uuid.UUID, float] = {}

    async def ensure_started(self) -> None:
        if self._started:
            return
        self._started = True
        # The default prefix: channels_redis serves every process-specific channel from one
        # shared receive loop, which only sees channels of that one prefix.
        self.channel = await self.layer.new_channel()
        self.spawn(self._listen())
        self.spawn(self._maintain())
        self.spawn(self._check_upstream_models())
        self.hook_drain()

    def hook_drain(self) -> None:
        """Drain this process on SIGTERM (:meth:`shutdown`): once, from whichever comes first,
        a socket (``ensure_started``) or an API call."""
        if not self._drain_hooked:
            self._drain_hooked = True
            _install_shutdown_hook(self)

    async def _check_upstream_models(self) -> None:
        """Warn when a registry entry names a model the upstream does not list (ids change)."""
        from conversations.models import ModelConfig

        try:
            listed = await self.client.list_models()
        except UpstreamError as error:
            logger.warning("could not list the upstream's models: %s", error.code)
            return
        known = {item.get("id") for item in listed.get("data", [])}
        configured = await _db(
            lambda: set(
                ModelConfig.objects.filter(enabled=True).values_list("upstream_model", flat=True)
            )
        )()
        for missing in sorted(configured - known):
            logger.warning("the upstream does not list model %r used by the registry", missing)

    # -- fan-out ---------------------------------------------------------------------------------

    async def join(self, group: str, socket: LocalSocket) -> None:
        """Hand ``socket`` every event of ``group`` from now on (before this returns, events
        may already arrive: the socket holds them until it is ready)."""
        room = self.rooms.get(group)
        if room is None:
            room = self.rooms[group] = _Room()
            room.sockets[socket] = None
            try:
                room.channel = await self.layer.new_channel()
                await self.layer.group_add(group, room.channel)
            except BaseException:
                if self.rooms.get(group) is room:
                    del self.rooms[group]
                raise
            finally:
                room.ready.set()
            if self.rooms.get(group) is room:
                room.relay = self.spawn(self._relay(room))
            return
        room.sockets[socket] = None
        await room.ready.wait()

    async def leave(self, group: str, socket: LocalSocket) -> None:
        room = self.rooms.get(group)
        if room is None or socket not in room.sockets:
            return
        del room.sockets[socket]
        if room.sockets:
            return
        del self.rooms[group]
        if room.relay is not None:
            room.relay.cancel()
        await room.ready.wait()
        if room.channel:
            await self.layer.group_discard(group, room.channel)

    async def publish(self, group: str, event: dict[str, Any]) -> None:
        """Hand ``event`` to this process's sockets in ``group``, then to other processes'."""
        room = self.rooms.get(group)
        if room is not None and room.sockets:
            await self.hand_out(room, SharedFrame(event))
        if self.single_process:
            return
        try:
            await self.layer.group_send(group, {**event, PUBLISHER: self.channel})
        except Exception as error:
            _cancelled_all_the_same(error)
            # Redis away: other workers' sockets miss this event (they resync from the row
            # on the next one they get, or when they reconnect); this worker's sockets, and
            # the reply itself, go on.
            self._layer_failed(error)
        else:
            self._layer_back()

    def _layer_failed(self, error: Exception) -> None:
        """Said once per outage, not once per delta or receive."""
        if not self.layer_down:
            self.layer_down = True
            logger.warning("channel layer unreachable (%s)", type(error).__name__)

    def _layer_back(self) -> None:
        if self.layer_down:
            self.layer_down = False
            logger.warning("channel layer reachable again")

    async def _receive(self, channel: str) -> dict[str, Any]:
        """The next message on ``channel``, waiting out failed receives: channels_redis can
        fail one when another receiver of this process is cancelled mid-read (the messages
        stay queued), and every one while Redis is away."""
        while True:
            try:
                message: dict[str, Any] = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Tried again, a receive cancelled as another error outlived its cancellation,
                # and a loop being closed (a worker's shutdown) waited for it for ever.
                _cancelled_all_the_same(error)
                retrying = self.layer_down
                self._layer_failed(error)
                await asyncio.sleep(0.5 if retrying else 0.05)
                continue
            self._layer_back()
            return message

    async def hand_out(self, room: _Room, event: SharedFrame) -> None:
        for socket in list(room.sockets):
            try:
                await socket.deliver(event)
            except Exception:
                logger.exception("handing %s to a socket failed", event.get("type"))

    async def _relay(self, room: _Room) -> None:
        """Hand the sockets of ``room`` what other processes (or views) sent to its group."""
        while True:
            event = await self._receive(room.channel)
            if event.pop(PUBLISHER, None) == self.channel:
                continue  # our own: our sockets had it directly
            if room.sockets:
                await self.hand_out(room, SharedFrame(event))

    @staticmethod
    def _loop_time() -> float:
        return asyncio.get_running_loop().time()

    def spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    def turn_under_way(self) -> asyncio.Future[None]:
        """A turn-starting action begins: the future to set once its reply is started (or
        none will be); a shutdown waits for it (:attr:`turns`)."""
        taken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.turns.add(taken)
        taken.add_done_callback(self.turns.discard)
        return taken

    def start(
        self,
        reply_id: uuid.UUID,
        conversation_id: uuid.UUID,
        context: actions.GenerationContext | None = None,
        *,
        supersedes: str = "",
    ) -> GenerationTask:
        """Start streaming ``reply_id`` unless this process already is (``context``: what the
        action that just created it knows, instead of reading it back).

        A continuation of a reply the reaper gave up on while its task lived (``supersedes``:
        the generation channel of that task's process, ``actions.Turn.supersedes``) makes the
        task of the older call give way, here or on its worker: it stops at once, publishes
        nothing more and is charged what it used; its later writes are refused by the row,
        whose newest call is no longer its own."""
        existing = self.tasks.get(reply_id)
        if existing is not None:
            if not _newer_call(context, existing):
                return existing
            existing.give_way()
        task = GenerationTask(self, reply_id, conversation_id, context)
        self.tasks[reply_id] = task
        stopped = self.stopped_early.pop(reply_id, None)
        if stopped is not None and self._loop_time() - stopped < STOPPED_EARLY_SECONDS:
            task.stop("cancelled")  # it finalizes as stopped before calling the upstream
        task.task = asyncio.ensure_future(task.run())
        if supersedes and supersedes != self.channel and task.record_id is not None:
            self.spawn(self._supersede(supersedes, reply_id, task.record_id))
        return task

    async def _supersede(self, channel: str, reply_id: uuid.UUID, record_id: int) -> None:
        """Tell the process on ``channel`` that the reply's call ``record_id`` has begun: its
        task of an older call gives way. Not sent (Redis away): that task gives way at its next
        checkpoint, which the row refuses as no longer its own (``_Checkpoints``)."""
        try:
            await self.layer.send(
                channel,
                {
                    "type": "generation.superseded",
                    "reply_id": str(reply_id),
                    "record_id": record_id,
                },
            )
        except Exception as error:
            logger.warning(
                "telling %s's old task to stop failed (%s)", reply_id, type(error).__name__
            )

    def forget(self, task: GenerationTask) -> None:
        if self.tasks.get(task.reply_id) is task:
            del self.tasks[task.reply_id]

    async def request_snapshot(
        self, reply: Message, after_seq: int, reply_channel: str, sync: int | None = None
    ) -> bool:
        """Ask the task holding ``reply`` (here or on another worker) for a snapshot.

        True if a task answered (locally at once, remotely on ``reply_channel``); False if none
        holds it: then the database row is the answer. ``sync``: the asking socket's number for
        this sync, carried back in the answer (a late answer to an earlier sync is told apart).
        """
        local = self.tasks.get(reply.pk)
        if local is not None and not local.superseded:
            await self.layer.send(reply_channel, _answering(local.snapshot(after_seq), sync))
            return True
        if not reply.generation_channel or reply.generation_channel == self.channel:
            return False
        await self.layer.send(
            reply.generation_channel,
            {
                "type": "generation.snapshot",
                "reply_id": str(reply.pk),
                "after_seq": after_seq,
                "reply_channel": reply_channel,
                "sync": sync,
            },
        )
        return True

    async def cancel(self, reply: Message) -> bool:
        """Stop ``reply``'s task, here or on the worker of its generation channel. False when
        no task can be holding it: a reply reaped while its task might have lived
        (``actions.reaped_while_its_task_may_live``) whose worker is this one, holding none.

        A reaped reply's stop goes to its worker all the same (its task may stream on there,
        cut off from the database, seen by the sockets it reaches), and stops only a task that
        runs: it is not remembered to stop one about to start, which would be a Continue's."""
        if actions.reaped_while_its_task_may_live(reply):
            if reply.pk in self.tasks:
                self.stop_reply(reply.pk)
                return True
            if reply.generation_channel == self.channel:
                return False
            await self.layer.send(
                reply.generation_channel,
                {"type": "generation.cancel", "reply_id": str(reply.pk), "running_only": True},
            )
            return True
        if reply.pk in self.tasks or reply.generation_channel == self.channel:
            self.stop_reply(reply.pk)
        elif reply.generation_channel:
            await self.layer.send(
                reply.generation_channel, {"type": "generation.cancel", "reply_id": str(reply.pk)}
            )
        return True

    def stop_reply(self, reply_id: uuid.UUID) -> None:
        """Stop the task of a reply of this process. One whose task is not started yet (its
        action has just committed, and the task starts once the action's rows are published)
        is remembered for a few seconds and stopped as it starts."""
        task = self.tasks.get(reply_id)
        if task is not None:
            task.stop("cancelled")
            return
        now = self._loop_time()
        self.stopped_early = {
            r: at for r, at in self.stopped_early.items() if now - at < STOPPED_EARLY_SECONDS
        }
        self.stopped_early[reply_id] = now

    async def _listen(self) -> None:
        while True:
            message = await self._receive(self.channel)
            try:
                await self._answer(message)
            except Exception as error:
                # The asking socket's channel full, or Redis away: it falls back on the row
                # (its snapshot timeout); this process goes on answering the others.
                logger.warning(
                    "answering %s failed (%s)", message.get("type"), type(error).__name__
                )

    async def _answer(self, message: dict[str, Any]) -> None:
        """A cancel or snapshot request for a task of this process, from any worker."""
        try:
            reply_id = uuid.UUID(message.get("reply_id", ""))
        except ValueError:
            return
        task = self.tasks.get(reply_id)
        if message.get("type") == "generation.cancel":
            if task is not None or not message.get("running_only"):
                self.stop_reply(reply_id)
        elif message.get("type") == "generation.superseded":
            record_id = message.get("record_id")
            if task is not None and isinstance(record_id, int) and _newer_call(record_id, task):
                task.give_way()
        elif message.get("type") == "generation.snapshot":
            sync = message.get("sync")
            # A task that gave way holds the reply no longer: its snapshot would be of the older
            # call, and the row (or the newer call's task) is the answer.
            answer = (
                task.snapshot(int(message.get("after_seq") or 0))
                if task is not None and not task.superseded
                else {"type": "reply.gone", "reply_id": message.get("reply_id")}
            )
            await self.layer.send(message.get("reply_channel", ""), _answering(answer, sync))

    async def _maintain(self) -> None:
        """Heartbeat our rows; reap rows whose process died.

        Rows are judged silent only once the database has been reachable for a whole pass:
        while it was away (a restart) no process could heartbeat its rows, and the first pass
        after it is back would otherwise reap replies that live processes still hold (their
        final write, a moment later, then finds the row no longer theirs, and the text is
        lost). By the next pass, their own passes have heartbeated them."""
        interval = settings.GENERATION_HEARTBEAT_SECONDS
        reachable = False  # the previous pass reached the database
        first = True
        while True:
            # The first pass at once when the process starts (it only checks the database):
            # the first reaping pass comes one interval later, not two.
            if not (first and self.first_pass_at_once):
                await asyncio.sleep(interval)
            first = False
            # A checkpoint refreshes the heartbeat too: rows written in the last half interval
            # are left alone (no row goes unwritten for more than 1.5 intervals).
            fresh_since = self._loop_time() - interval / 2
            due = [r for r, task in self.tasks.items() if task.last_write < fresh_since]
            try:
                await _db(actions.heartbeat)(due)
                if reachable:
                    await self.reap()
                else:
                    await pgpool.fetch_one("SELECT 1", ())
                reachable = True
            except pgpool.DatabaseUnavailable:
                # The outage is the pool's to tell (once); a traceback would say nothing more.
                reachable = False
                logger.warning("heartbeat/reaper pass skipped: the database is unavailable")
            except Exception:
                reachable = False
                logger.exception("heartbeat/reaper pass failed")

    async def reap(self, stale_after: float | None = None) -> int:
        stale_after = stale_after or settings.GENERATION_STALE_SECONDS
        reaped = await _db(actions.reap_stale_replies)(stale_after, list(self.tasks))
        # Calls without a reply (API, titles): once older than any call may run.
        released = await _db(quota.release_orphaned_reservations)(
            timedelta(seconds=settings.UPSTREAM_DEADLINE + stale_after)
        )
        if released:
            logger.warning("released %d reservations of calls whose process stopped", released)
        for conversation_id, reply_id, seq in reaped:
            logger.warning("reaped reply %s: its process stopped heartbeating", reply_id)
            charged = await charges_of_reply(reply_id)
            await self.publish(group_name(conversation_id), reaped_end(reply_id, seq, charged))
        # Every end told first: naming one (reading its conversation) must not hold back the
        # others' ends, which no later pass would tell (their rows are reaped already).
        for _, reply_id, _ in reaped:
            self.spawn(self._name_after_reap(reply_id))
        return len(reaped)

    async def _name_after_reap(self, reply_id: uuid.UUID) -> None:
        """A first reply reaped (its process died before it ended) names its conversation as
        one that ended otherwise does: its process, gone, never would."""
        try:
            context = await _db(actions.load_generation_context)(reply_id)
        except Message.DoesNotExist:
            return
        except Exception:
            logger.exception("reaped reply %s: its conversation could not be named", reply_id)
            return
        if context.needs_title:
            calls = "".join(str(call.get("function")) for call in context.tool_calls)
            written = context.content or context.reasoning or calls
            self.spawn(generate_title(self, context, written))

    async def stop(self) -> None:
        """Stop everything this service runs (tests, and the end of a loop)."""
        for task in list(self.tasks.values()):
            task.stop("shutdown")
        running = [t.task for t in self.tasks.values() if t.task is not None]
        if running:
            await asyncio.wait(running, timeout=10)
        for background in list(self.background):
            background.cancel()
        if self.background:
            await asyncio.wait(list(self.background), timeout=5)
        _services.pop(asyncio.get_running_loop(), None)
        await aclose_shared_client()
        await pgpool.aclose_pool()  # its checkpoints' connections

    async def shutdown(self, grace: float) -> None:
        """Stop accepting replies and API calls, let running ones finish for ``grace``,
        interrupt the rest (an API call ends with ``server_shutting_down``, settled for what it
        used: ``api_asgi``)."""
        self.accepting = False
        # Its sockets are closed at once (``restarting``), not left open while the replies
        # finish: daphne cancels them, and they would carry nothing more until the process
        # exits (and its cancel, which closes them too, may miss them).
        for socket in {socket: None for room in self.rooms.values() for socket in room.sockets}:
            closing = _restarting(socket)
            if closing is not None:
                self.spawn(closing)
        deadline = asyncio.get_running_loop().time() + grace
        if self.turns:
            await asyncio.wait(self.turns, timeout=grace)
            grace = max(0.0, deadline - asyncio.get_running_loop().time())
        running = [t.task for t in self.tasks.values() if t.task is not None]
        running += self.api_calls
        # Settlements under way or waiting for the database (API calls, titles) get it too.
        running += pgpool.writes_under_way()
        if running:
            logger.info(
                "shutdown: waiting up to %.0fs for %d replies, API calls and settlements",
                grace,
                len(running),
            )
            _done, still = await asyncio.wait(running, timeout=grace)
            for task in list(self.tasks.values()):
                task.stop("shutdown")
            self.api_calls_ending = True
            for call in list(self.api_calls):
                call.cancel()
            if still:
                await asyncio.wait(still, timeout=10)
        await aclose_shared_client()


def _answering(answer: dict[str, Any], sync: Any) -> dict[str, Any]:
    """A snapshot request's answer, naming the asking socket's sync (when it named one)."""
    return {**answer, "sync": sync} if isinstance(sync, int) else answer


def _newer_call(call: actions.GenerationContext | int | None, task: GenerationTask) -> bool:
    """Whether ``call`` (a context, or a call's ledger row id) is a newer call of the reply
    than ``task``'s: a continuation begun since."""
    record_id = call.record_id if isinstance(call, actions.GenerationContext) else call
    return record_id is not None and task.record_id is not None and record_id > task.record_id


_services: dict[asyncio.AbstractEventLoop, GenerationService] = {}


def get_service() -> GenerationService:
    """The generation service of the running event loop."""
    loop = asyncio.get_running_loop()
    service = _services.get(loop)
    if service is None:
        for stale in [other for other in _services if other.is_closed()]:
            del _services[stale]
        service = _services[loop] = GenerationService()
    return service


def start_with_the_server() -> None:
    """Under daphne, start the process's service as soon as its reactor runs, not at its first
    connection: a worker restarted after a crash reaps the replies its predecessor left
    streaming, and gives back their reservations and stream slots, with no traffic at all
    (daphne has no lifespan events). Elsewhere (tests, other servers) the first connection
    starts it (``chatsite.asgi.StartServices``)."""
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor

    def start() -> None:
        service = get_service()
        service.first_pass_at_once = True
        started = asyncio.ensure_future(service.ensure_started())
        started.add_done_callback(_log_a_failed_start)

    # At the loop's first turn: the reactor's startup triggers run before its asyncio loop does.
    reactor.callWhenRunning(reactor.callLater, 0, start)  # type: ignore[attr-defined]


def _log_a_failed_start(started: asyncio.Future[None]) -> None:
    if not started.cancelled() and started.exception() is not None:
        logger.error("the generation service did not start", exc_info=started.exception())


def _install_shutdown_hook(service: GenerationService) -> None:
    """Under daphne, SIGTERM stops the Twisted reactor: drain our replies before it does."""
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import defer, reactor

    def drain() -> Any:
        # At once, not when the shutdown task first runs: daphne's own trigger (registered
        # before this one) has just cancelled every request, and an API call told so must
        # find the process draining (``api_asgi._serve_call``) to go on for the grace.
        service.accepting = False
        return defer.Deferred.fromFuture(
            asyncio.ensure_future(service.shutdown(settings.SHUTDOWN_GRACE_SECONDS))
        )

    reactor.addSystemEventTrigger("before", "shutdown", drain)  # type: ignore[attr-defined,arg-type]


def stop_replies(*conversation_ids: uuid.UUID) -> None:
    """Every reply of these conversations still being written stops, wherever it runs, and is
    charged what it used: for conversations being deleted, whose replies nobody can read. The
    replies are read now (their rows may be about to go with the delete), and their processes
    told once it has committed: a ``generation.cancel`` to the generation channel of each, as a
    ``reply.cancel`` from another worker is sent. A reply reaped while its task may live on
    (``actions.reaped_while_its_task_may_live``) is among them: its task, cut off from the
    database, would otherwise stream on unseen and be charged its whole answer."""
    layer = get_channel_layer()
    replies = list(
        Message.objects.filter(conversation_id__in=conversation_ids)
        .filter(Q(status__in=actions.ACTIVE) | actions.reaped_while_their_tasks_may_live())
        .exclude(generation_channel="")
        .values_list("pk", "generation_channel", "status")
    )
    if layer is None or not replies:
        return

    def send() -> None:
        for reply_id, channel, status in replies:
            cancel: dict[str, Any] = {"type": "generation.cancel", "reply_id": str(reply_id)}
            if status not in actions.ACTIVE:
                cancel["running_only"] = True  # as GenerationService.cancel sends it
            try:
                async_to_sync(layer.send)(channel, cancel)
            except Exception as error:
                # Redis away: that reply runs to its end, and is charged what it used then.
                logger.warning("stopping reply %s failed (%s)", reply_id, type(error).__name__)

    transaction.on_commit(send)


def _conversations_deleted_with(origin: Any) -> QuerySet[Conversation] | None:
    """The conversations that deleting ``origin`` takes, when it is a set of conversations, an
    account or a set of accounts (their conversations go with them); None for anything else."""
    if isinstance(origin, User):
        return Conversation.objects.filter(owner_id=origin.pk)
    if isinstance(origin, QuerySet) and origin.model is User:
        return Conversation.objects.filter(owner__in=origin.values("pk"))
    if isinstance(origin, QuerySet) and origin.model is Conversation:
        return Conversation.objects.filter(pk__in=origin.values("pk"))
    return None


# Kept on a delete's origin: the conversations whose replies were stopped for it at once.
_STOPPED_FOR = "_conversations_with_replies_stopped"


@receiver(pre_delete, sender=Conversation)
def stop_the_replies_of_a_deleted_conversation(
    sender: Any, instance: Conversation, origin: Any = None, **kwargs: Any
) -> None:
    """However a conversation is deleted for good — on its admin page, by "delete selected",
    with its owner's account, by any code — its replies being written stop (read before the
    delete: its messages go with it). Its ledger rows stay (``UsageRecord.conversation`` and
    ``.message`` are set to null), each settled by its task as it ends.

    A delete that takes many conversations at once (accounts, a set of conversations): at the
    first one's signal, the replies of all of them are stopped in one query (not one per
    conversation), and the others' signals find theirs done."""
    if instance.pk in getattr(origin, _STOPPED_FOR, ()):
        return
    taken = _conversations_deleted_with(origin)
    if taken is None:
        stop_replies(instance.pk)
        return
    ids = frozenset(taken.values_list("pk", flat=True)) | {instance.pk}
    stop_replies(*ids)
    setattr(origin, _STOPPED_FOR, ids)
