"""Authorization in one place: every path fetches user-owned rows through these helpers.

"Missing" and "not yours" look the same to the caller (both raise ``Conversation.DoesNotExist``,
which views turn into a 404).
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from conversations.models import Conversation, User


def visible_conversations(user: User) -> QuerySet[Conversation]:
    """Conversations ``user`` may open."""
    if not user.is_authenticated or not user.is_active:
        return Conversation.objects.none()
    return Conversation.objects.alive().filter(owner=user)


def access_conversation(user: User, conversation_id: uuid.UUID | str) -> Conversation:
    """The conversation if ``user`` may see it; ``Conversation.DoesNotExist`` otherwise."""
    try:
        return visible_conversations(user).select_related("model").get(pk=conversation_id)
    except (ValueError, TypeError, ValidationError, Conversation.DoesNotExist):
        # A malformed id is as missing as an unknown one.
        raise Conversation.DoesNotExist from None


def access_conversation_for_posting(user: User, conversation_id: uuid.UUID | str) -> Conversation:
    """The conversation if ``user`` may post in it (its owner); a ChatError otherwise."""
    from conversations.errors import NotFound

    try:
        return access_conversation(user, conversation_id)
    except Conversation.DoesNotExist:
        raise NotFound("No such conversation.") from None
