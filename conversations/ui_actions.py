"""The browser UI's writes (and its exports): one small function each, one transaction each.

Views authorize through ``access`` and call exactly one of these. Turn-starting writes (send,
edit, regenerate, ...) are not here: they go over the websocket to ``actions``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TypedDict

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from conversations import actions, api_wire, generation, params, quota, sharing, text
from conversations.errors import InvalidParameter, ModelNotAllowed, NotFound
from conversations.frames import MessageFrame, message_frame
from conversations.models import Conversation, Message, ModelConfig, User

MAX_TITLE_CHARS = 200
MAX_SYSTEM_PROMPT_CHARS = 100_000
MAX_IMPORTED_MESSAGES = 2_000
IMPORTABLE_ROLES = ("user", "assistant", "tool")


class ExportedConversation(TypedDict):
    title: str
    model: str
    system_prompt: str
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


def create_conversation(user: User, model_name: Any) -> Conversation:
    """A new, empty conversation with an enabled model."""
    model = _enabled_model(user, model_name)
    quota.check_may_use(user, model)
    conversation = Conversation.objects.create(owner=user, model=model)
    sharing.announce_listed(conversation)  # the owner's other tabs list it
    return conversation


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


def update_settings(
    conversation: Conversation, *, model_name: Any, system_prompt: Any, new_params: Any
) -> Conversation:
    """Model, system prompt and parameters, validated against the chosen model's abilities.
    The model is one its owner may use (:func:`quota.check_may_choose`).

    Raises :class:`InvalidParameter` (or :class:`ModelNotAllowed`) whose ``param`` names the
    offending field.
    """
    model = quota.check_may_choose(conversation.owner, model_name)
    text.bounded(
        system_prompt, MAX_SYSTEM_PROMPT_CHARS, label="The system prompt", param="system_prompt"
    )
    if not isinstance(new_params, Mapping):
        raise InvalidParameter("params must be an object.", param="params")
    clean = params.check_params(new_params, model)
    conversation.model = model
    conversation.system_prompt = system_prompt
    conversation.params = clean
    conversation.save(update_fields=["model", "system_prompt", "params", "updated_at"])
    return conversation


# --- reading: the page's tree and exports ------------------------------------------------------


def message_tree(conversation: Conversation) -> list[MessageFrame]:
    """Every message of the conversation (all branches), oldest first, as websocket frames."""
    rows = conversation.messages.select_related("model", "author").order_by("created_at")
    return [message_frame(m) for m in rows]


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
        "messages": actions.transcript_messages(conversation, path),
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
    reasoning = raw.get("reasoning_content") or ""
    if not isinstance(reasoning, str):
        raise InvalidParameter(f"{where}.reasoning_content must be text.", param="messages")
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
    return {
        "role": role,
        "content": content,
        "reasoning": reasoning,
        "tool_calls": tool_calls or None,
        "tool_call_id": tool_call_id,
    }


def import_conversation(user: User, data: Any) -> Conversation:
    """A new conversation holding the exported branch, as one chain of complete messages."""
    if not isinstance(data, Mapping):
        raise InvalidParameter("The file must hold a JSON object.", param="file")
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list) or len(raw_messages) > MAX_IMPORTED_MESSAGES:
        raise InvalidParameter(
            f"messages must be a list of at most {MAX_IMPORTED_MESSAGES} messages.",
            param="messages",
        )
    parsed = [_imported_message(i, m) for i, m in enumerate(raw_messages)]
    system_prompt = data.get("system_prompt")
    if system_prompt is None:
        system_prompt = next((m["content"] for m in parsed if m["role"] == "system"), "")
    text.bounded(
        system_prompt, MAX_SYSTEM_PROMPT_CHARS, label="system_prompt", param="system_prompt"
    )
    title = data.get("title") or ""
    if not isinstance(title, str):
        raise InvalidParameter("title must be text.", param="title")
    model_name = data.get("model")
    model = (
        enabled_models().filter(name=model_name).first() if isinstance(model_name, str) else None
    )
    model = model or enabled_models().first()
    if model is None:
        raise ModelNotAllowed(quota.no_model_available(user), param="model")
    quota.check_may_use(user, model)
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=user,
            model=model,
            title=" ".join(title.split())[:MAX_TITLE_CHARS],
            system_prompt=system_prompt,
        )
        parent: Message | None = None
        for item in parsed:
            if item["role"] == "system":
                continue
            parent = Message.objects.create(
                conversation=conversation,
                parent=parent,
                role=item["role"],
                author=user if item["role"] != "assistant" else None,
                model=model if item["role"] == "assistant" else None,
                content=item["content"],
                reasoning=item["reasoning"],
                tool_calls=item["tool_calls"],
                tool_call_id=item["tool_call_id"],
                status=Message.Status.COMPLETE,
                finish_reason="stop" if item["role"] == "assistant" else "",
            )
        sharing.announce_listed(conversation)
    return conversation
