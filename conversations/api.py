"""The DeepSeek-compatible HTTP API, and the page where people manage their API keys.

Endpoints (csrf-exempt, no session; a personal key instead):

* ``POST /v1/chat/completions`` and ``POST /chat/completions`` — DeepSeek's chat completions,
  streamed or not, against our registry names (``deepseek-chat``, ``deepseek-reasoner``);
* ``GET /v1/models`` and ``GET /models`` — the models the key's user may call;
* ``GET /user/balance`` — the user's remaining token allowance, in DeepSeek's balance shape
  with ``currency: "TOKENS"``.

The key goes in ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` (the API reference's
two formats), exactly one of them. Errors use DeepSeek's envelope. The views parse, call one
unit of database work in ``api_keys`` (off the event loop), call the upstream, and answer;
``api_wire`` builds the JSON and SSE.

Streaming: we wait up to :data:`KEEPALIVE_INTERVAL_S` for the upstream's first delta before
answering, so that a request the upstream refuses at once still gets its real status. After
that the 200 goes out, ``: keep-alive`` comments follow every few seconds until the first
delta, and a later failure ends the stream with a ``data: {"error": …}`` event and no
``[DONE]``. A client that leaves mid-stream cancels the upstream call, and the call is settled
as ``cancelled`` with what it used.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime, time, timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from conversations import api_keys, api_wire, quota
from conversations.api_keys import Call, InvalidKey
from conversations.errors import ChatError, InvalidParameter
from conversations.generation import upstream_client
from conversations.upstream import (
    ChatResult,
    Completed,
    ContentDelta,
    Finish,
    LogprobsDelta,
    ReasoningDelta,
    StreamEvent,
    ToolCallDelta,
    UpstreamError,
    Usage,
)

logger = logging.getLogger("conversations.api")

MAX_BODY_BYTES = 2 * 1024 * 1024
KEEPALIVE_INTERVAL_S = 5.0
# Statuses of upstream failures as our callers see them; anything else is a bad gateway.
UPSTREAM_STATUSES = {400: 400, 422: 400, 429: 429, 503: 503, 504: 504}


def _db(function: Any) -> Any:
    """One unit of ORM work on a pool thread, never the single shared ORM thread."""
    return database_sync_to_async(function, thread_sensitive=False)


# --- answers ----------------------------------------------------------------------------------


def _envelope_response(
    status: int, message: str, *, param: str | None = None, code: str | None = None
) -> HttpResponse:
    body = api_wire.dumps(api_wire.error_envelope(status, message, param=param, code=code))
    return HttpResponse(body, status=status, content_type="application/json")


def _error_response(error: ChatError) -> HttpResponse:
    response = _envelope_response(error.status, error.message, param=error.param, code=error.code)
    retry_after = error.extra.get("retry_after")
    if isinstance(retry_after, int | float):
        response["Retry-After"] = str(max(1, round(retry_after)))
    return response


def _upstream_status(error: UpstreamError) -> int:
    return UPSTREAM_STATUSES.get(error.http_status, 502)


def _upstream_envelope(error: UpstreamError) -> api_wire.ErrorEnvelope:
    # error.message is safe by contract (no key, no upstream internals); detail is for the log.
    return api_wire.error_envelope(_upstream_status(error), error.message, code=error.code)


def _upstream_error_response(error: UpstreamError) -> HttpResponse:
    status = _upstream_status(error)
    return HttpResponse(
        api_wire.dumps(_upstream_envelope(error)), status=status, content_type="application/json"
    )


def _internal_error() -> HttpResponse:
    logger.exception("API request failed")
    return _envelope_response(500, "Something went wrong on our side.", code="internal_error")


# --- parsing ----------------------------------------------------------------------------------


def _secret_of(request: HttpRequest) -> str:
    """The key from exactly one of the two headers the reference allows."""
    authorization = request.headers.get("Authorization")
    api_key = request.headers.get("X-API-Key")
    if authorization is not None and api_key is not None:
        raise InvalidParameter(
            "Send the key in either 'Authorization: Bearer <key>' or 'X-API-Key: <key>', not both."
        )
    if api_key is not None:
        secret = api_key.strip()
    elif authorization is not None and authorization[:7].lower() == "bearer ":
        secret = authorization[7:].strip()
    else:
        raise InvalidKey()
    if not secret:
        raise InvalidKey()
    return secret


def _json_body(request: HttpRequest) -> Any:
    """The parsed body, or the InvalidParameter to answer once the key is known to be good."""
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return InvalidParameter("The request body is not valid JSON.")


def _too_large(request: HttpRequest) -> bool:
    declared = request.headers.get("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return True
    return len(request.body) > MAX_BODY_BYTES


def _method_not_allowed(allowed: str) -> HttpResponse:
    response = _envelope_response(405, f"Method not allowed; use {allowed}.")
    response["Allow"] = allowed
    return response


# --- the API ----------------------------------------------------------------------------------


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    if request.method != "POST":
        return _method_not_allowed("POST")
    try:
        secret = _secret_of(request)
        if _too_large(request):
            return _envelope_response(
                413, f"The request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB."
            )
        call: Call = await _db(api_keys.start_call)(secret, _json_body(request))
    except ChatError as error:
        return _error_response(error)
    except Exception:
        return _internal_error()
    if call.request.stream:
        return await _stream(call)
    return await _complete(call)


async def _complete(call: Call) -> HttpResponse:
    """A non-streaming completion; settled exactly once, also when the client leaves."""
    outcome = "cancelled"
    result: ChatResult | None = None
    request = call.request
    try:
        result = await upstream_client().complete_chat(
            call.target, request.messages, request.params
        )
        outcome = "complete"
    except UpstreamError as error:
        outcome = "failed"
        result = error.partial
        return _upstream_error_response(error)
    except Exception:
        outcome = "failed"
        return _internal_error()
    finally:
        await asyncio.shield(_db(api_keys.finish_call)(call, outcome=outcome, result=result))
    usage = result.usage or _estimated_usage(call, result)
    body = api_wire.completion_body(
        result,
        model_name=call.model_name,
        fingerprint=call.fingerprint,
        thinking=call.target.thinking,
        logprobs=request.logprobs,
        usage=usage,
    )
    return HttpResponse(body, content_type="application/json")


def _estimated_usage(call: Call, result: ChatResult) -> dict[str, Any]:
    """Only for an upstream that sent no usage at all (DeepSeek always does)."""
    return api_wire.estimated_usage(
        quota.estimate_prompt_tokens(call.request.messages),
        quota.estimate_tokens(result.text + result.reasoning),
    )


async def _stream(call: Call) -> HttpResponseBase:
    relay = _Relay(call)
    try:
        failure = await relay.open()
    except Exception:
        await relay.abandon("failed")
        return _internal_error()
    if failure is not None:
        return failure
    response = StreamingHttpResponse(relay, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


class _Relay:
    """One streamed call: upstream events in, DeepSeek chunks out, settled exactly once.

    Given to ``StreamingHttpResponse`` as its content: Django iterates it, and calls
    :meth:`close` after the response, which settles a call whose stream never started
    (the client left between the headers and the body).
    """

    def __init__(self, call: Call) -> None:
        self.call = call
        request = call.request
        self.writer = api_wire.ChunkWriter(
            model_name=call.model_name,
            fingerprint=call.fingerprint,
            thinking=call.target.thinking,
            include_usage=request.include_usage,
        )
        self.events: AsyncGenerator[StreamEvent, None] = upstream_client().stream_chat(
            call.target, request.messages, request.params
        )
        self.next_event: asyncio.Task[StreamEvent] | None = None
        self.started = False
        self.text: list[str] = []
        self.reasoning: list[str] = []

    async def _pull(self) -> StreamEvent:
        return await anext(self.events)

    async def open(self) -> HttpResponse | None:
        """Start the upstream call; an error response if it fails before the first delta."""
        self.next_event = asyncio.ensure_future(self._pull())
        try:
            await asyncio.wait({self.next_event}, timeout=KEEPALIVE_INTERVAL_S)
        except asyncio.CancelledError:
            await self.abandon("cancelled")
            raise
        if self.next_event.done() and self.next_event.exception() is not None:
            error = self.next_event.exception()
            if isinstance(error, UpstreamError):
                await self.abandon("failed", error.partial)
                return _upstream_error_response(error)
            raise error  # type: ignore[misc]
        return None

    async def abandon(self, outcome: str, result: ChatResult | None = None) -> None:
        """End the call without streaming it (failed before the 200, or the client left)."""
        await self._stop_upstream()
        await self._settle(outcome, result)

    async def _stop_upstream(self) -> None:
        """Close the upstream call (a no-op once it has ended); the upstream sees the hang-up."""
        task = self.next_event
        if task is not None and not task.done():
            task.cancel()
            # Swallowed even if it is our own cancellation: settlement must still run.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await self.events.aclose()

    def close(self) -> None:
        """Called by Django after the response, in a thread: only a never-started stream is
        still open here (its generator's ``finally`` settles every other case)."""
        if not self.started and not self.call.settled:
            api_keys.finish_call(self.call, outcome="cancelled", result=None)
            task = self.next_event
            if task is not None:
                task.get_loop().call_soon_threadsafe(task.cancel)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    def _partial(self) -> ChatResult:
        return ChatResult(text="".join(self.text), reasoning="".join(self.reasoning))

    async def _chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        writer = self.writer
        want_logprobs = self.call.request.logprobs
        outcome = "cancelled"  # leaving by any other way than the two below: the client left
        result: ChatResult | None = None
        output_started = False
        usage: dict[str, Any] | None = None
        finish: str | None = None
        assert self.next_event is not None
        try:
            # Still waiting after open()'s interval: the headers go out with a keep-alive.
            while not self.next_event.done():
                yield api_wire.KEEPALIVE
                await asyncio.wait({self.next_event}, timeout=KEEPALIVE_INTERVAL_S)
            event: StreamEvent | None = self.next_event.result()
            out = [writer.role()]
            while event is not None:
                following: StreamEvent | None = None
                if isinstance(event, ContentDelta | ReasoningDelta):
                    output_started = True
                    logprobs = None
                    if want_logprobs:
                        # Logprobs of a chunk come as the event right after its text.
                        following = await anext(self.events)
                        if isinstance(following, LogprobsDelta):
                            is_text = isinstance(event, ContentDelta)
                            logprobs = following.content if is_text else following.reasoning
                            following = None
                    if isinstance(event, ContentDelta):
                        self.text.append(event.text)
                        out.append(writer.content(event.text, logprobs))
                    else:
                        self.reasoning.append(event.text)
                        out.append(writer.reasoning(event.text, logprobs))
                elif isinstance(event, ToolCallDelta):
                    output_started = True
                    out.append(writer.tool_call(event))
                elif isinstance(event, LogprobsDelta):
                    out.append(writer.logprobs_only(event.content, event.reasoning))
                elif isinstance(event, Finish):
                    finish = event.reason
                elif isinstance(event, Usage):
                    usage = event.usage
                elif isinstance(event, Completed):
                    result = event.result
                    if usage is None:
                        usage = result.usage or _estimated_usage(self.call, result)
                    outcome = "complete"
                    out.append(writer.finish(finish or result.finish_reason, usage))
                    yield b"".join(out)
                    # Settled before [DONE]: a client that checks its balance after the
                    # stream sees this call charged.
                    await self._settle(outcome, result)
                    yield api_wire.DONE
                    return
                if out:
                    yield b"".join(out) if len(out) > 1 else out[0]
                    out = []
                event = following if following is not None else await anext(self.events)
        except UpstreamError as error:
            outcome = "interrupted" if output_started else "failed"
            result = error.partial or self._partial()
            yield api_wire.error_event(_upstream_envelope(error))
        except Exception:
            outcome = "failed"
            result = self._partial()
            logger.exception("API stream failed")
            yield api_wire.error_event(
                api_wire.error_envelope(500, "Something went wrong on our side.")
            )
        finally:
            if result is None:
                result = self._partial()
            await self._stop_upstream()
            await self._settle(outcome, result)

    async def _settle(self, outcome: str, result: ChatResult | None) -> None:
        if not self.call.settled:
            await asyncio.shield(
                _db(api_keys.finish_call)(self.call, outcome=outcome, result=result)
            )


@csrf_exempt
async def list_models(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        names = await _db(api_keys.list_models)(_secret_of(request))
    except ChatError as error:
        return _error_response(error)
    return HttpResponse(api_wire.models_body(names), content_type="application/json")


@csrf_exempt
async def user_balance(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        balance = await _db(api_keys.balance_of)(_secret_of(request))
    except ChatError as error:
        return _error_response(error)
    body = api_wire.balance_body(
        available=balance.available, remaining_tokens=balance.remaining_tokens
    )
    return HttpResponse(body, content_type="application/json")


# --- the settings page ------------------------------------------------------------------------


def _expiry_from(form_value: str) -> datetime | None:
    """A date from the form means "valid through that day" in the deployment's time zone."""
    if not form_value:
        return None
    try:
        day = datetime.strptime(form_value, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidParameter(
            "The expiry must be a date (YYYY-MM-DD).", param="expires_at"
        ) from None
    end = datetime.combine(day + timedelta(days=1), time.min)
    return timezone.make_aware(end)


@login_required
def api_keys_page(request: HttpRequest) -> HttpResponse:
    user = request.user
    context: dict[str, Any] = {"created": None, "error": None, "form": {}}
    status = 200
    if request.method == "POST":
        form = request.POST
        context["form"] = {"name": form.get("name", ""), "expires_at": form.get("expires_at", "")}
        try:
            new = api_keys.create_key(
                user,  # type: ignore[arg-type]
                name=form.get("name", ""),
                expires_at=_expiry_from(form.get("expires_at", "").strip()),
                save_history=form.get("save_history") == "on",
            )
        except ChatError as error:
            context["error"] = error.message
            status = 400
        else:
            # Rendered, not redirected: the secret must not travel through a session or URL.
            context["created"] = new
            context["form"] = {}
            status = 201
    context["keys"] = list(api_keys.keys_of(user))  # type: ignore[arg-type]
    context["now"] = timezone.now()
    response = render(request, "api_keys/list.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        key = api_keys.access_key(request.user, key_id)  # type: ignore[arg-type]
    except ChatError as error:
        return HttpResponse(error.message, status=error.status)
    api_keys.revoke_key(key, request.user)  # type: ignore[arg-type]
    return redirect("api-keys")


@login_required
@require_POST
def api_key_history(request: HttpRequest, key_id: int) -> HttpResponse:
    try:
        key = api_keys.access_key(request.user, key_id)  # type: ignore[arg-type]
    except ChatError as error:
        return HttpResponse(error.message, status=error.status)
    api_keys.set_save_history(key, request.POST.get("save_history") == "on")
    return redirect("api-keys")
