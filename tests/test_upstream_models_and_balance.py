"""GET /models and /user/balance return parsed JSON, with the same error mapping."""

from __future__ import annotations

import json

import pytest

from conversations.upstream import AuthError
from tests.test_upstream_support import answer_status, error_body, serving

MODELS = {
    "object": "list",
    "data": [
        {"id": "deepseek-flash", "object": "model", "owned_by": "deepseek"},
        {"id": "deepseek-v4-pro", "object": "model", "owned_by": "deepseek"},
    ],
}
BALANCE = {
    "is_available": True,
    "balance_infos": [
        {
            "currency": "USD",
            "total_balance": "25.40",
            "granted_balance": "5.00",
            "topped_up_balance": "20.40",
        }
    ],
}


@pytest.mark.asyncio
async def test_list_models_returns_the_parsed_list() -> None:
    async with serving([answer_status(200, json.dumps(MODELS).encode())], path="/v1/") as (
        server,
        client,
    ):
        models = await client.list_models()
    assert models == MODELS
    assert (server.requests[0].method, server.requests[0].path) == ("GET", "/v1/models")


@pytest.mark.asyncio
async def test_get_balance_keeps_amounts_as_strings() -> None:
    async with serving([answer_status(200, b"\n\n" + json.dumps(BALANCE).encode())]) as (
        server,
        client,
    ):
        balance = await client.get_balance()
    assert balance["balance_infos"][0]["total_balance"] == "25.40"
    assert server.requests[0].path == "/user/balance"


@pytest.mark.asyncio
async def test_a_rejected_key_on_models_is_an_auth_error() -> None:
    body = error_body("Authentication Fails", "authentication_error")
    async with serving([answer_status(401, body)]) as (server, client):
        with pytest.raises(AuthError):
            await client.list_models()
    assert len(server.requests) == 1
