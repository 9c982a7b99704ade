"""Pages and probes. Views parse, authorize through ``access``, call one action, answer."""

from __future__ import annotations

import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from conversations import access
from conversations.models import Conversation, ModelConfig

PAGE_SIZE = 30


def site_context(request: HttpRequest) -> dict[str, Any]:
    """Template context every page gets: whether the upstream is the simulator."""
    return {"upstream_is_simulator": settings.DEEPSEEK_SIMULATED}


def _sidebar(request: HttpRequest) -> dict[str, Any]:
    conversations = access.visible_conversations(request.user).only("id", "title", "updated_at")  # type: ignore[arg-type]
    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    return {"page": page, "models": ModelConfig.objects.filter(enabled=True)}


@login_required
def conversation_list(request: HttpRequest) -> HttpResponse:
    return render(request, "conversations/list.html", _sidebar(request))


@login_required
def conversation_detail(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    try:
        conversation = access.access_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    except Conversation.DoesNotExist:
        raise Http404("No such conversation") from None
    return render(
        request,
        "conversations/detail.html",
        {**_sidebar(request), "conversation": conversation},
    )


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive (no dependencies checked)."""
    return JsonResponse({"status": "ok"})


def _database_state() -> str:
    try:
        connection = connections[DEFAULT_DB_ALIAS]
        connection.ensure_connection()
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        return "pending-migrations" if pending else "ok"
    except Exception:
        return "down"
    finally:
        connections.close_all()


async def _channel_layer_state() -> str:
    layer = get_channel_layer()
    if layer is None:
        return "down"
    try:
        channel = await layer.new_channel("readyz.")
        await layer.send(channel, {"type": "readyz.ping"})
        message = await layer.receive(channel)
        return "ok" if message.get("type") == "readyz.ping" else "down"
    except Exception:
        return "down"


async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database is reachable and migrated, the channel layer answers."""
    checks = {
        "database": await sync_to_async(_database_state, thread_sensitive=False)(),
        "channel_layer": await _channel_layer_state(),
    }
    ready = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
