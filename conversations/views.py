"""Pages and probes. Views parse, authorize through ``access``, call one action, answer."""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.core.paginator import Paginator
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from conversations import access, actions, audit, quota, sharing, signin, text, ui_actions
from conversations.errors import ChatError, InvalidParameter
from conversations.models import Conversation, ModelConfig, User

PAGE_SIZE = 30
MAX_JSON_BODY = settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def site_context(request: HttpRequest) -> dict[str, Any]:
    """Template context every page gets: whether the upstream is the simulator, and the largest
    request body a page may send (an import file, checked in the browser before sending)."""
    return {"upstream_is_simulator": settings.DEEPSEEK_SIMULATED, "import_max_bytes": MAX_JSON_BODY}


def _sidebar(request: HttpRequest) -> dict[str, Any]:
    query = request.GET.get("q", "").strip()[:100]
    conversations = access.own_conversations(request.user).only("id", "title", "updated_at")  # type: ignore[arg-type]
    shared = access.team_conversations(request.user).only("id", "title", "updated_at")  # type: ignore[arg-type]
    if query:
        conversations = conversations.filter(title__icontains=query)
        shared = shared.filter(title__icontains=query)
    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    # Only the models this user may use are offered; none: the page says why.
    limits = quota.limits_for(request.user)  # type: ignore[arg-type]
    models = quota.usable_models(limits)
    no_model = "" if models else quota.no_model_available(request.user)  # type: ignore[arg-type]
    return {
        "page": page,
        "shared": list(shared[:PAGE_SIZE]),
        "query": query,
        "models": models,
        "no_model": no_model,
        "limits": limits,
        "new_chat_blocked": _new_chat_blocked(limits, no_model),
    }


def _new_chat_blocked(limits: quota.Limits, no_model: str) -> str:
    """Why the sidebar's "New chat" is disabled ("" if it is not): no model to start with, or
    the account suspended (a conversation started then could not be sent in)."""
    if limits.suspended:
        return "Your account is suspended: you cannot start a conversation; ask an administrator."
    if limits.none_allowed:
        return f"{limits.none_allowed}: you cannot start a conversation; ask an administrator."
    return no_model


def _model_choices(models: list[ModelConfig]) -> list[dict[str, Any]]:
    today = timezone.localdate()
    return [
        {
            "name": m.name,
            "display_name": m.display_name,
            "thinking": m.thinking,
            "supports_tools": m.supports_tools,
            "supports_json": m.supports_json,
            "supports_logprobs": m.supports_logprobs,
            "max_output_tokens": m.max_output_tokens,
            "default_max_tokens": m.default_max_tokens,
            # USD per 1M input tokens not served from cache, as settlement will charge them
            # today (a dated price, else the model's own): the composer's cost estimate.
            "price_input_per_million": float(quota.price_on(m, today)[1]),
        }
        for m in models
    ]


# How admission pads the prompt's estimate: the composer's and the starter's warnings reserve
# the same.
_PROMPT_PADDING = {"factor": quota.PROMPT_PADDING, "slack": quota.PROMPT_SLACK}


def _owned(request: HttpRequest, conversation_id: uuid.UUID) -> Conversation:
    try:
        return access.access_owned_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    except Conversation.DoesNotExist:
        raise Http404("No such conversation") from None


def _json_body(request: HttpRequest) -> Any:
    try:
        body = request.body  # Django refuses over DATA_UPLOAD_MAX_MEMORY_SIZE
    except RequestDataTooBig:
        body = None
    if body is None or len(body) > MAX_JSON_BODY:
        raise InvalidParameter(
            f"The request is too large (at most {MAX_JSON_BODY // 1_000_000} MB).", param="body"
        )
    try:
        parsed = text.loads((body or b"null").decode("utf-8"))  # UTF-8 only (RFC 8259)
    except ValueError:
        raise InvalidParameter("The request is not valid JSON.", param="body") from None
    text.check_parsed_json(body, parsed)
    return parsed


def _error(error: ChatError) -> JsonResponse:
    return JsonResponse({"error": error.as_dict()}, status=error.status)


# Never cached: the browser's back button showed the page as it was first read (its notice of
# spent tokens too), not the usage of now.
@never_cache
@login_required
def conversation_list(request: HttpRequest) -> HttpResponse:
    context = _sidebar(request)
    # Said before a message is typed, as the conversation's page says it: a suspended user's
    # "Start chat" was refused only once pressed, and one whose tokens were spent got a new,
    # empty conversation they could not send in (one more at each try).
    limits = context["limits"]
    usage = quota.usage_summary(request.user, limits)  # type: ignore[arg-type]
    context["account_blocked"] = _account_blocked(limits, usage)
    # When the open page reads itself again (app.js): the spent period's reset, or soon.
    context["blocked_until"] = _blocked_until(limits, usage)
    # What the starter's estimate needs, as the composer's (a new conversation has no system
    # prompt, history or parameters of its own).
    context["starter_data"] = {
        "models": _model_choices(context["models"]),
        "usage_url": reverse("usage-summary"),
        "prompt_padding": _PROMPT_PADDING,
    }
    return render(request, "conversations/list.html", context)


def _account_blocked(limits: quota.Limits, usage: dict[str, Any]) -> str:
    """Why this user can send nothing at all now, whichever the conversation: suspended, a
    limit of 0 requests a minute or replies at once, or the day's or the month's tokens spent,
    or held by replies still running ("" if none)."""
    if limits.suspended:
        return "Your account is suspended: you can read, but not send; ask an administrator."
    if limits.none_allowed:
        return f"{limits.none_allowed}: you can read, but not send; ask an administrator."
    if usage["exhausted"]:
        which = "today's" if usage["exhausted"] == "today" else "this month's"
        figures = usage[usage["exhausted"]]
        if figures["reserved"]:
            running = figures["running"]
            by, end = (
                ("a running reply", "once it ends, with what it did not use")
                if running == 1
                else (f"{running:,} running replies", "as they end, with what they did not use")
            )
            return (
                f"All of {which} {figures['limit']:,} tokens are spent or held by {by}: "
                f"{figures['spent']:,} spent, {figures['reserved']:,} reserved. "
                f"You can send again {end}."
            )
        return f"You have used all of {which} tokens; see Usage for when it resets."
    return ""


# A page blocked only by what running replies hold reads itself again this often: it learns of
# no reply's end in another tab or conversation otherwise.
BLOCKED_BY_RUNNING_REPLIES_RECHECK = timedelta(seconds=10)


def _blocked_until(limits: quota.Limits, usage: dict[str, Any]) -> str:
    """When an open page blocked for spent tokens should read itself again (ISO 8601; "" if it
    is not so blocked): the spent period's reset, or soon when running replies hold some of it
    (what they do not use comes back as they end)."""
    if not usage["exhausted"] or limits.suspended:
        return ""
    figures = usage[usage["exhausted"]]
    if figures["reserved"]:
        return (timezone.now() + BLOCKED_BY_RUNNING_REPLIES_RECHECK).isoformat()
    return str(figures["resets_at"])


def _another_model(request: HttpRequest, conversation: Conversation, in_settings: str) -> str:
    """How to go on with another model: the owner picks one in its Settings (``in_settings``);
    a collaborator has no Settings there, but a copy of it is theirs to change."""
    if conversation.owner_id == request.user.pk:
        return in_settings
    return 'ask its owner to change the model, or use "Continue in my chats" and pick another.'


@login_required
def conversation_detail(request: HttpRequest, conversation_id: uuid.UUID) -> HttpResponse:
    try:
        conversation = access.access_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    except Conversation.DoesNotExist:
        raise Http404("No such conversation") from None
    context = _sidebar(request)
    may_post = access.can_post(request.user, conversation)  # type: ignore[arg-type]
    limits = quota.limits_for(request.user)  # type: ignore[arg-type]
    usage = quota.usage_summary(request.user, limits)  # type: ignore[arg-type]
    if not may_post:
        blocked = "You can read this conversation; only its owner and collaborators post."
    elif limits.suspended:
        blocked = _account_blocked(limits, usage)
    elif context["no_model"]:
        blocked = context["no_model"]  # no other model to pick either
    elif not conversation.model.enabled:
        blocked = f"The model {conversation.model.display_name} is disabled; " + _another_model(
            request, conversation, "pick another in Settings."
        )
    elif not limits.allows(conversation.model):
        blocked = f"You may not use {conversation.model.display_name}; " + _another_model(
            request, conversation, "pick another model in Settings."
        )
    else:
        blocked = _account_blocked(limits, usage)
    page_data = {
        "conversation_id": str(conversation.id),
        "title": str(conversation),
        "user_id": request.user.pk,
        # model, model_display_name, system_prompt, params, and the settings_version a save is based on
        **ui_actions.settings_of(conversation),
        "models": _model_choices(context["models"]),
        "blocked": blocked,
        # Blocked for tokens spent or held: when to read the page again (conversation.js).
        "blocked_until": _blocked_until(limits, usage) if blocked else "",
        "may_post": may_post,
        "max_message_chars": actions.MAX_MESSAGE_CHARS,
        # The viewer's own cap on max_tokens (None: the model's limit only): Settings say it.
        "max_tokens_cap": limits.max_output_tokens,
        "usage_url": reverse("usage-summary"),
        # How admission pads the prompt's estimate: the composer's warning reserves the same.
        "prompt_padding": _PROMPT_PADDING,
        "messages": ui_actions.message_tree(conversation),
    }
    return render(
        request,
        "conversations/detail.html",
        {
            **context,
            "conversation": conversation,
            "page_data": page_data,
            "blocked": blocked,
            "is_owner": conversation.owner_id == request.user.pk,
        },
    )


@login_required
@require_POST
def conversation_create(request: HttpRequest) -> HttpResponse:
    """New chat: a form post (redirects) or JSON {model} (answers {id, url})."""
    wants_json = request.content_type == "application/json"
    try:
        if wants_json:
            body = _json_body(request)
            model_name = body.get("model") if isinstance(body, dict) else None
        else:
            model_name = request.POST.get("model")
        conversation = ui_actions.create_conversation(request.user, model_name)  # type: ignore[arg-type]
    except ChatError as error:
        if wants_json:
            return _error(error)
        return redirect("conversation-list")
    url = reverse("conversation-detail", args=[conversation.id])
    if wants_json:
        return JsonResponse({"id": str(conversation.id), "url": url}, status=201)
    return redirect(url)


@login_required
@require_POST
def conversation_rename(request: HttpRequest, conversation_id: uuid.UUID) -> JsonResponse:
    conversation = _owned(request, conversation_id)
    try:
        body = _json_body(request)
        title = body.get("title") if isinstance(body, dict) else None
        conversation = ui_actions.rename_conversation(conversation, title)
    except ChatError as error:
        return _error(error)
    return JsonResponse({"title": conversation.title})


@login_required
@require_POST
def conversation_delete(request: HttpRequest, conversation_id: uuid.UUID) -> JsonResponse:
    ui_actions.delete_conversation(_owned(request, conversation_id))
    return JsonResponse({"deleted": True})


@login_required
@require_POST
def conversation_restore(request: HttpRequest, conversation_id: uuid.UUID) -> JsonResponse:
    try:
        conversation = access.access_deleted_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    except Conversation.DoesNotExist:
        raise Http404("No such conversation") from None
    ui_actions.restore_conversation(conversation)
    return JsonResponse({"restored": True})


@login_required
@require_POST
def conversation_settings(request: HttpRequest, conversation_id: uuid.UUID) -> JsonResponse:
    """Save model, system prompt and params over the settings they were based on (``based_on``:
    their version); errors name their field: {errors: {field: msg}}; a save based on settings
    changed since is refused (409) with the settings as they are now (``error.settings``)."""
    conversation = _owned(request, conversation_id)
    try:
        body = _json_body(request)
        if not isinstance(body, dict):
            raise InvalidParameter("The settings must be an object.", param="params")
        conversation = ui_actions.update_settings(
            conversation,
            based_on=body.get("based_on"),
            model_name=body.get("model"),
            system_prompt=body.get("system_prompt", ""),
            new_params=body.get("params", {}),
        )
    except ChatError as error:
        return JsonResponse(
            {"errors": {error.param or "__all__": error.message}, "error": error.as_dict()},
            status=error.status,
        )
    return JsonResponse(ui_actions.settings_of(conversation))


@login_required
def conversation_export(request: HttpRequest, conversation_id: uuid.UUID, fmt: str) -> HttpResponse:
    """The branch ending at ?leaf= (default: the newest message) as JSON or Markdown."""
    try:
        conversation = access.access_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    except Conversation.DoesNotExist:
        raise Http404("No such conversation") from None
    if fmt not in ("json", "md"):
        raise Http404("No such format")
    try:
        exported = ui_actions.export_branch(conversation, request.GET.get("leaf"))
    except ChatError as error:
        return _error(error)
    filename = slugify(exported["title"]) or "conversation"
    if fmt == "md":
        response: HttpResponse = HttpResponse(
            ui_actions.export_markdown(exported), content_type="text/markdown; charset=utf-8"
        )
    else:
        response = JsonResponse(exported, json_dumps_params={"ensure_ascii": False, "indent": 2})
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    return response


@login_required
@require_POST
def conversation_import(request: HttpRequest) -> JsonResponse:
    """Create a conversation from an exported JSON body; answers {id, url}."""
    try:
        conversation = ui_actions.import_conversation(request.user, _json_body(request))  # type: ignore[arg-type]
    except ChatError as error:
        return _error(error)
    url = reverse("conversation-detail", args=[conversation.id])
    return JsonResponse({"id": str(conversation.id), "url": url}, status=201)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's, its current password throttled as sign-in is (``signin``); the new password is
    audited (by the user, as theirs), and the sockets of the account's other sessions (ended
    by the new password) leave at once."""

    form_class = signin.PasswordChangeThrottledForm

    def get_form(self, form_class: Any = None) -> Any:
        form: Any = super().get_form(form_class)
        form.request = self.request  # whose address a wrong current password counts against
        return form

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        _password_changed(form.user)
        return response


def admin_password_change(request: HttpRequest) -> HttpResponseBase:
    """The admin's "Change password" (staff, of their own account; ``chatsite/urls.py`` puts
    it in front of the admin's own): as the admin's page, but :class:`PasswordChangeView`,
    throttled and closing the other sessions' sockets like the site's."""
    request.current_app = admin.site.name
    view = PasswordChangeView.as_view(
        form_class=signin.AdminPasswordChangeThrottledForm,
        success_url=reverse("admin:password_change_done", current_app=admin.site.name),
        extra_context=admin.site.each_context(request),
    )
    return view(request)


def _password_changed(user: User) -> None:
    audit.record_password(user, user)
    sharing.announce_password_change(user)


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
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "readyz.ping"})
        message = await layer.receive(channel)
        return "ok" if message.get("type") == "readyz.ping" else "down"
    except Exception:
        return "down"


# /readyz is public (the proxy passes it on) and a check costs 10-100 ms (the migration plan,
# a channel-layer round trip): its answer is reused for a second, and requests arriving while a
# check runs wait for that one. A failure still shows within about a second of a check.
READINESS_FRESH_SECONDS = 1.0
_readiness: tuple[float, dict[str, str]] | None = None
_readiness_running: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, asyncio.Future[dict[str, str]]
] = weakref.WeakKeyDictionary()


async def _check_readiness() -> dict[str, str]:
    global _readiness
    started = time.monotonic()
    checks = {
        "database": await sync_to_async(_database_state, thread_sensitive=False)(),
        "channel_layer": await _channel_layer_state(),
    }
    _readiness = (started, checks)
    return checks


async def _readiness_checks() -> dict[str, str]:
    if _readiness is not None and time.monotonic() - _readiness[0] < READINESS_FRESH_SECONDS:
        return _readiness[1]
    loop = asyncio.get_running_loop()
    running = _readiness_running.get(loop)
    if running is None:
        running = _readiness_running[loop] = asyncio.ensure_future(_check_readiness())
        running.add_done_callback(lambda _: _readiness_running.pop(loop, None))
    return await asyncio.shield(running)  # a client gone does not cancel the others' check


async def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database is reachable and migrated, the channel layer answers (as
    checked within the last second)."""
    checks = await _readiness_checks()
    ready = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
