"""The provider's explanation of a refused request reaches the caller only when it shows
nothing of our provider key, and only for the refusals DeepSeek makes of a request (400, 422).

Before, only the whole key was redacted: an explanation that echoed the key masked
("****cdef", "sk-te****cdef"), shortened, or by its last characters, as providers do to say
which key they mean, reached API callers and the chat's pages as it came; and any other 4xx
(a gateway's or firewall's 403, a wrong base URL's 404) passed its text on, which describes
the deployment (addresses, accounts), not the caller's request. Those now get the error's own
message; the log's detail keeps the provider's text (the whole key redacted).

And every failure the simulator makes, through the API, says nothing of the key."""

from __future__ import annotations

import pytest

from conversations.models import ModelConfig, User
from conversations.upstream import InvalidRequest, ModelTarget, UpstreamError
from simulator.directives import FAULT_STATUSES
from tests.support import SIM_KEY
from tests.test_api_support import bearer, chat, make_key
from tests.test_upstream_support import (
    API_KEY,
    answer_status,
    answer_stream,
    collect,
    error_body,
    serving,
    sse,
)

TARGET = ModelTarget("deepseek-flash", thinking=False, reasoning_passback="send")
MESSAGES = [{"role": "user", "content": "Hi"}]
CORE = API_KEY.removeprefix("sk-")

ECHOES = {
    "masked": f"Your api key: ****{API_KEY[-4:]} may not use this model",
    "shortened": f"Key {API_KEY[:8]}...{API_KEY[-4:]} is not allowed here",
    "masked-middle": f"Key sk-{CORE[:2]}{'*' * 20}{CORE[-4:]} is not allowed here",
    "suffix": f"The key ending in {API_KEY[-4:]} is not allowed here",
    "prefix": f"Unknown project for key prefix {CORE[:6]}",
    "whole": f"key {API_KEY} rejected",
}


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [400, 422])
@pytest.mark.parametrize("echo", sorted(ECHOES))
async def test_an_explanation_showing_anything_of_the_key_is_not_passed_on(
    status: int, echo: str
) -> None:
    async with serving([answer_status(status, error_body(ECHOES[echo]))]) as (_server, client):
        with pytest.raises(InvalidRequest) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    error = caught.value
    assert error.message == InvalidRequest.default_message
    # The log keeps what the provider said, the whole key redacted.
    assert API_KEY not in error.detail
    assert ECHOES[echo].replace(API_KEY, "[redacted]") in error.detail


@pytest.mark.asyncio
async def test_an_error_event_showing_the_key_is_not_passed_on() -> None:
    event = sse({"error": {"message": ECHOES["masked"], "type": "invalid_request_error"}})
    async with serving([answer_stream(event)]) as (_server, client):
        with pytest.raises(InvalidRequest) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert caught.value.message == InvalidRequest.default_message


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [403, 404, 413])
async def test_another_4xx_keeps_its_text_for_the_log(status: int) -> None:
    text = "Access denied: requests from 203.0.113.7 to account acme-prod are blocked"
    async with serving([answer_status(status, error_body(text))]) as (_server, client):
        with pytest.raises(UpstreamError) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    error = caught.value
    assert error.message == InvalidRequest.default_message
    assert "203.0.113.7" in error.detail


@pytest.mark.asyncio
async def test_an_explanation_of_the_request_is_still_passed_on() -> None:
    text = "Invalid max_tokens value, the valid range of max_tokens is [1, 8192]"
    async with serving([answer_status(400, error_body(text))]) as (_server, client):
        with pytest.raises(InvalidRequest) as caught:
            await collect(client.stream_chat(TARGET, MESSAGES))
    assert caught.value.message == text


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_no_failure_the_simulator_makes_shows_the_key_through_the_api(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    headers = bearer(make_key(alice))
    asks = [f"fault={fault}" for fault in FAULT_STATUSES] + ["drop_after=2 say=a b c d e f"]
    for ask in asks:
        for stream in (False, True):
            content = f"[[sim: {ask}]]"
            response = chat(
                base, headers, {"messages": [{"role": "user", "content": content}]}, stream=stream
            )
            text = response.text
            assert "error" in text, (ask, stream, text)
            for part in (SIM_KEY, SIM_KEY[-4:], SIM_KEY.removeprefix("sk-")[:6], "****"):
                assert part not in text, (ask, stream, text)
