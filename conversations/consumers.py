"""The conversation websocket. Thin: parse a frame, authorize, call one action, answer."""

from __future__ import annotations

import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from chatsite import logs
from conversations import access
from conversations.models import Conversation


def _load_conversation(user: Any, conversation_id: uuid.UUID) -> Conversation | None:
    try:
        return access.access_conversation(user, conversation_id)
    except Conversation.DoesNotExist:
        return None


class ConversationConsumer(AsyncJsonWebsocketConsumer):
    conversation: Conversation

    async def connect(self) -> None:
        user = self.scope.get("user")
        logs.bind(user_id=getattr(user, "pk", None) or "-")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        conversation_id = self.scope["url_route"]["kwargs"]["conversation_id"]
        conversation = await database_sync_to_async(_load_conversation)(user, conversation_id)
        if conversation is None:
            await self.close(code=4404)
            return
        self.conversation = conversation
        await self.accept()
