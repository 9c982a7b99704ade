"""The browser UI's writes (and its exports): one small function each, one transaction each.

Views authorize through ``access`` and call exactly one of these. Turn-starting writes (send,
edit, regenerate, ...) are not here: they go over the websocket to ``actions``.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypedDict

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from conversations import actions, api_wire, generation, params, quota, sharing, text
from conversations.errors import ChatError, Conflict, InvalidParameter, ModelNotAllowed, NotFound
from conversations.frames import MessageFrame, message_frame
from conversations.models import Conversation, Message, ModelConfig, User, store_chain

MAX_TITLE_CHARS = 200
MAX_SYSTEM_PROMPT_CHARS = 100_000
MAX_IMPORTED_MESSAGES = 2_000
IMPORTABLE_ROLES = ("user", "assistant", "tool")
IMPORTABLE_STATUSES = ("complete", "cancelled", "interrupted", "failed")
FINISH_REASON = re.compile(r"[a-z_]{1,40}|")


# What the page says under a reply that ended early (static/js/replies.js, conversation.js),
# said in its Markdown export too: the text is not the whole answer.
ENDED_EARLY = {
    "length": "The reply was cut off at the token limit.",
    "content_filter": "The provider's content filter withheld the rest of this reply.",
    "cancelled": "Stopped.",
    "interrupted": "The reply did not finish.",
    "failed": "The reply did not finish.",
}


class ExportedConversation(TypedDict):
    title: str
    model: str
    system_prompt: str
    params: dict[str, Any]
    messages: list[dict[str, Any]]


def enabled_models() -> QuerySet[ModelConfig]:
    return ModelConfig.objects.filter(enabled=True)


def _enabled_model(user: User, name: Any) -> ModelConfig:
    if not isinstance(name, str) or not name:
        raise InvalidParameter("Choose a model.", param="model")
    model = enabled_models().filter(name=name).first()
    if model is None:
        if not quota.usable_models(quota.limits_for(user)):
            raise ModelNotAllowed(quota.no_model_available(user), param="model")
        raise ModelNotAllowed("That model is not available.", param="model")
    return model


#: How long an empty conversation is kept for a tab that may still be open on it.
ABANDONED_AFTER = timedelta(days=1)


def create_conversation(user: User, model_name: Any) -> Conversation:
    """A new, empty conversation with an enabled model. It is listed once its first message
    is admitted (:func:`actions.send_message`); the owner's empty ones abandoned since before
    :data:`ABANDONED_AFTER` go (one whose first message was refused would otherwise stay)."""
    model = _enabled_model(user, model_name)
    quota.check_may_use(user, model)
    Conversation.objects.filter(owner=user).abandoned(timezone.now() - ABANDONED_AFTER).delete()
    return Conversation.objects.create(owner=user, model=model)


def rename_conversation(conversation: Conversation, title: Any) -> Conversation:
    if not isinstance(title, str) or not title.strip():
        raise InvalidParameter("The title is empty.", param="title")
    title = " ".join(title.split())[:MAX_TITLE_CHARS]
    Conversation.objects.filter(pk=conversation.pk).update(title=title, updated_at=timezone.now())
    conversation.title = title
    sharing.announce_title(conversation.pk, title)  # the other tabs and readers on it
    sharing.announce_listed(conversation)  # the owner's tabs' lists
    sharing.announce_shared_listing([conversation.pk])  # the lists of those it is shared with
    return conversation


def delete_conversation(conversation: Conversation) -> None:
    """Soft delete: the row stays so the delete can be undone. Open sockets on it (the
    owner's other tabs, teammates watching) re-check, and leave; its replies being written
    stop (kept as stopped, with their text, should the delete be undone). The owner's tabs
    unlist it."""
    listed_before = sharing.shared_listings([conversation.pk])
    Conversation.objects.filter(pk=conversation.pk).update(deleted_at=timezone.now())
    sharing.announce_access_change(conversation.pk)
    sharing.announce_deleted(conversation.owner_id, conversation.pk)
    sharing.announce_shared_listing([conversation.pk], listed_before)
    generation.stop_replies(conversation.pk)


def restore_conversation(conversation: Conversation) -> None:
    """The delete undone: the owner's tabs list it again, and so do those it is shared with."""
    Conversation.objects.filter(pk=conversation.pk).update(deleted_at=None)
    sharing.announce_listed(conversation)
    sharing.announce_shared_listing([conversation.pk], {})


class ConversationSettings(TypedDict):
    model: str
    model_display_name: str
    system_prompt: str
    params: dict[str, Any]
    settings_version: str


def settings_version(conversation: Conversation) -> str:
    """What a settings save is based on: a digest of the model, system prompt and parameters
    as stored. A digest of the settings themselves rather than ``updated_at`` (which every
    message moves), so that only a change of the settings (in another tab, by another worker,
    in the admin) makes a save based on the old ones stale."""
    stored = [conversation.model_id, conversation.system_prompt, conversation.params]
    encoded = json.dumps(stored, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()[:32]


def settings_of(conversation: Conversation) -> ConversationSettings:
    """The settings as the page holds them (its data, a save's answer, a refused save's, the
    ``conversation.settings`` frame)."""
    return {
        "model": conversation.model.name,
        "model_display_name": conversation.model.display_name,
        "system_prompt": conversation.system_prompt,
        "params": conversation.params,
        "settings_version": settings_version(conversation),
    }


SETTINGS_CHANGED = (
    "These settings were changed in another tab or by another worker — they are shown as they "
    "are now; make your change again."
)


def update_settings(
    conversation: Conversation,
    *,
    based_on: Any,
    model_name: Any,
    system_prompt: Any,
    new_params: Any,
) -> Conversation:
    """Model, system prompt and parameters, validated against the chosen model's abilities.
    The model is one its owner may use (:func:`quota.check_may_choose`), and ``max_tokens``
    within the owner's own cap (a higher one was saved, and refused with every message).

    A save replaces all the settings, so it is made only over the settings it was based on
    (``based_on``: their :func:`settings_version`): one based on settings changed since (in
    another tab, say) would silently wipe that change, and is refused (:class:`Conflict`,
    carrying the settings as they are now). A saved change is announced to the conversation's
    open pages (``conversation.settings``), so that their copies follow.

    Raises :class:`InvalidParameter` (or :class:`ModelNotAllowed`) whose ``param`` names the
    offending field.
    """
    if not isinstance(based_on, str) or not based_on:
        raise InvalidParameter(
            "based_on must name the settings the change was made to.", param="based_on"
        )
    with transaction.atomic():
        # Locked from the check to the write: two saves based on the same settings take turns,
        # and the second is refused.
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("model", "owner")
            .get(pk=conversation.pk)
        )
        if settings_version(conversation) != based_on:
            raise Conflict(SETTINGS_CHANGED, settings=settings_of(conversation))
        model = quota.check_may_choose(conversation.owner, model_name)
        text.bounded(
            system_prompt, MAX_SYSTEM_PROMPT_CHARS, label="The system prompt", param="system_prompt"
        )
        if not isinstance(new_params, Mapping):
            raise InvalidParameter("params must be an object.", param="params")
        cap = quota.limits_for(conversation.owner).max_output_tokens
        clean = params.check_params(new_params, model, max_tokens_cap=cap)
        conversation.model = model
        conversation.system_prompt = system_prompt
        conversation.params = clean
        conversation.save(update_fields=["model", "system_prompt", "params", "updated_at"])
        # As stored (JSON's round trip), so that the version is the one a page read gets.
        conversation.refresh_from_db(fields=["params"])
        sharing.announce_settings(conversation.pk, settings_of(conversation))
    return conversation


# --- reading: the page's tree and exports ------------------------------------------------------


def message_tree(conversation: Conversation) -> list[MessageFrame]:
    """Every message of the conversation (all branches), oldest first, as websocket frames,
    each reply with what its calls were charged."""
    rows = list(conversation.messages.select_related("model", "author").order_by("created_at"))
    charged = quota.charges_of_replies(m.pk for m in rows if m.role == Message.Role.ASSISTANT)
    return [message_frame(m, charged.get(str(m.pk))) for m in rows]


def _branch_leaf(conversation: Conversation, leaf_id: Any) -> uuid.UUID | None:
    if leaf_id:
        try:
            return conversation.messages.only("id").get(pk=leaf_id).pk
        except (Message.DoesNotExist, ValidationError, ValueError, TypeError):
            raise NotFound("No such message in this conversation.") from None
    latest = conversation.messages.order_by("-created_at").only("id").first()
    return latest.pk if latest else None


def export_branch(conversation: Conversation, leaf_id: Any = None) -> ExportedConversation:
    """The branch ending at ``leaf_id`` (the newest message by default) in the API's format."""
    path = actions.path_to(conversation, _branch_leaf(conversation, leaf_id))
    return {
        "title": str(conversation),
        "model": conversation.model.name,
        "system_prompt": conversation.system_prompt,
        "params": conversation.params,
        "messages": actions.transcript_messages(conversation, path, how_replies_ended=True),
    }


def export_markdown(exported: ExportedConversation) -> str:
    lines = [f"# {exported['title']}", "", f"Model: `{exported['model']}`", ""]
    for message in exported["messages"]:
        role = message["role"]
        heading = {"system": "System", "user": "You", "assistant": "Assistant", "tool": "Tool"}
        lines.append(f"## {heading.get(role, role)}")
        lines.append("")
        if message.get("reasoning_content"):
            quoted = "\n".join(f"> {line}" for line in message["reasoning_content"].splitlines())
            lines += ["> **Thinking**", ">", quoted, ""]
        if message.get("tool_call_id"):
            lines += [f"Result of `{message['tool_call_id']}`:", ""]
        if message.get("content"):
            lines += [message["content"], ""]
        ended_early = ENDED_EARLY.get(message.get("finish_reason") or message.get("status") or "")
        if ended_early:
            lines += [f"*{ended_early}*", ""]
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            lines += [
                f"Tool call `{function.get('name', '')}` (`{call.get('id', '')}`):",
                "",
                "```json",
                str(function.get("arguments", "")),
                "```",
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def _imported_message(index: int, raw: Any) -> dict[str, Any]:
    where = f"messages[{index}]"
    if not isinstance(raw, Mapping):
        raise InvalidParameter(f"{where} must be an object.", param="messages")
    role = raw.get("role")
    if role not in (*IMPORTABLE_ROLES, "system"):
        raise InvalidParameter(
            f"{where}.role must be system, user, assistant or tool.", param="messages"
        )
    content = raw.get("content")
    if content is None:
        content = ""
    text.bounded(content, actions.MAX_MESSAGE_CHARS, label=f"{where}.content", param="messages")
    # A reply's thinking, held to a reply's limit; on another role it would be stored and
    # never shown nor sent.
    reasoning = raw.get("reasoning_content") or ""
    if reasoning and role != "assistant":
        raise InvalidParameter(
            f"{where}.reasoning_content is only for an assistant message.", param="messages"
        )
    text.bounded(
        reasoning,
        actions.MAX_MESSAGE_CHARS,
        label=f"{where}.reasoning_content",
        param="messages",
    )
    tool_calls = raw.get("tool_calls")
    if tool_calls is not None and role != "assistant":
        raise InvalidParameter(
            f"{where}.tool_calls must be a list on an assistant message.", param="messages"
        )
    # The API's rules for a message's tool calls: the next turn sends them upstream as they are.
    tool_calls = api_wire.check_tool_calls(tool_calls, where)
    tool_call_id = raw.get("tool_call_id") or ""
    if not isinstance(tool_call_id, str) or len(tool_call_id) > 100:
        raise InvalidParameter(f"{where}.tool_call_id must be a short string.", param="messages")
    status, finish_reason = _how_it_ended(where, role, raw)
    return {
        "role": role,
        "content": content,
        "reasoning": reasoning,
        "tool_calls": tool_calls or None,
        "tool_call_id": tool_call_id,
        "status": status,
        "finish_reason": finish_reason,
    }


def _how_it_ended(where: str, role: str, raw: Mapping[str, Any]) -> tuple[str, str]:
    """A reply's status and finish reason as exported (complete and "stop" when not said). One
    exported while it was being written had stopped there, for the file: it imports as
    interrupted (and can be continued)."""
    if role != "assistant":
        if "status" in raw or "finish_reason" in raw:
            raise InvalidParameter(
                f"{where}: only an assistant message has a status or finish_reason.",
                param="messages",
            )
        return Message.Status.COMPLETE, ""
    status = raw.get("status") or Message.Status.COMPLETE
    if status not in Message.Status.values:
        raise InvalidParameter(
            f"{where}.status must be one of {', '.join(IMPORTABLE_STATUSES)}.", param="messages"
        )
    if status in actions.ACTIVE:
        status = Message.Status.INTERRUPTED
    finish_reason = raw.get("finish_reason")
    if finish_reason is None:
        finish_reason = "stop" if status == Message.Status.COMPLETE else ""
    if not isinstance(finish_reason, str) or not FINISH_REASON.fullmatch(finish_reason):
        raise InvalidParameter(
            f"{where}.finish_reason must be a short name (stop, length, ...).", param="messages"
        )
    return status, finish_reason


def _check_tool_answers(parsed: list[dict[str, Any]]) -> None:
    """A tool message answers a call of the assistant message just before it (or before the
    tool messages right after that one): the upstream refuses any other, and the imported
    conversation could not be continued."""
    calls: set[str] = set()
    for index, item in enumerate(parsed):
        if item["role"] == "assistant":
            calls = {call["id"] for call in item["tool_calls"] or []}
        elif item["role"] == "tool":
            if item["tool_call_id"] not in calls:
                raise InvalidParameter(
                    f"messages[{index}] (a tool message) must answer, by its tool_call_id, a "
                    "tool call of the assistant message before it.",
                    param="messages",
                )
        elif item["role"] == "user":
            calls = set()


def import_conversation(user: User, data: Any) -> Conversation:
    """A new conversation holding the exported branch, as one chain of messages, with the
    export's model, system prompt and parameters (checked as the settings' are)."""
    if isinstance(data, list):
        raise InvalidParameter(
            "The file holds a list, not an exported conversation: an object with its "
            '"messages" (and "model", "system_prompt", "params") is expected.',
            param="file",
        )
    if not isinstance(data, Mapping):
        raise InvalidParameter("The file must hold a JSON object.", param="file")
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list) or len(raw_messages) > MAX_IMPORTED_MESSAGES:
        raise InvalidParameter(
            f"messages must be a list of at most {MAX_IMPORTED_MESSAGES} messages.",
            param="messages",
        )
    parsed = [_imported_message(i, m) for i, m in enumerate(raw_messages)]
    _check_tool_answers(parsed)
    system_prompt = data.get("system_prompt")
    if system_prompt is None:
        system_prompt = next((m["content"] for m in parsed if m["role"] == "system"), "")
    text.bounded(
        system_prompt, MAX_SYSTEM_PROMPT_CHARS, label="system_prompt", param="system_prompt"
    )
    title = data.get("title") or ""
    if not isinstance(title, str):
        raise InvalidParameter("title must be text.", param="title")
    model = _imported_model(user, data.get("model"))
    quota.check_may_use(user, model)
    raw_params = data.get("params")
    clean_params = params.check_params({} if raw_params is None else raw_params, model)
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=user,
            model=model,
            title=" ".join(title.split())[:MAX_TITLE_CHARS],
            system_prompt=system_prompt,
            params=clean_params,
        )
        _insert_chain(conversation, user, model, [m for m in parsed if m["role"] != "system"])
        sharing.announce_listed(conversation)
    return conversation


def _insert_chain(
    conversation: Conversation, user: User, model: ModelConfig, items: list[dict[str, Any]]
) -> None:
    """The messages as one chain, each the parent of the next (:func:`store_chain`)."""
    store_chain(
        [
            Message(
                conversation=conversation,
                role=item["role"],
                author=user if item["role"] != "assistant" else None,
                model=model if item["role"] == "assistant" else None,
                content=item["content"],
                reasoning=item["reasoning"],
                tool_calls=item["tool_calls"],
                tool_call_id=item["tool_call_id"],
                status=item["status"],
                finish_reason=item["finish_reason"],
                # An imported reply was written under the export's parameters (JSON mode:
                # drawn as JSON), as far as the file says.
                params=conversation.params if item["role"] == "assistant" else {},
            )
            for item in items
        ]
    )


def _imported_model(user: User, name: Any) -> ModelConfig:
    """The file's model, if its importer may use it (refused naming it and why, as a
    settings' change is); without one, the first they may use."""
    if name is None:
        usable = quota.usable_models(quota.limits_for(user))
        if not usable:
            raise ModelNotAllowed(quota.no_model_available(user), param="model")
        return usable[0]
    try:
        return quota.check_may_choose(user, name)
    except ChatError as error:
        raise type(error)(f"The file's model: {error.message}", param="model") from None
