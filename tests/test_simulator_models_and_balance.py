from __future__ import annotations

import re
from decimal import Decimal

import httpx

from simulator.testing import running_simulator

AUTH = {"Authorization": "Bearer sk-alice"}


def test_current_profile_lists_the_v4_models_owned_by_deepseek() -> None:
    with running_simulator(profile="current-2026") as url:
        for path in ("/models", "/v1/models"):
            body = httpx.get(url + path, headers=AUTH).json()
            assert body["object"] == "list"
            assert [m["id"] for m in body["data"]] == [
                "deepseek-flash",
                "deepseek-v4-flash",
                "deepseek-v4-pro",
            ]
            assert all(
                m == {"id": m["id"], "object": "model", "owned_by": "deepseek"}
                for m in body["data"]
            )


def test_legacy_profile_lists_chat_and_reasoner() -> None:
    with running_simulator(profile="legacy-2025") as url:
        body = httpx.get(f"{url}/models", headers=AUTH).json()
        assert [m["id"] for m in body["data"]] == ["deepseek-chat", "deepseek-reasoner"]


def test_balance_amounts_are_decimal_strings() -> None:
    with running_simulator() as url:
        response = httpx.get(f"{url}/user/balance", headers=AUTH)
        assert response.status_code == 200
        body = response.json()
        assert body["is_available"] is True
        info = body["balance_infos"][0]
        assert info["currency"] in ("USD", "CNY")
        for field in ("total_balance", "granted_balance", "topped_up_balance"):
            assert isinstance(info[field], str)
            assert re.fullmatch(r"\d+\.\d{2}", info[field])
        assert Decimal(info["total_balance"]) == Decimal(info["granted_balance"]) + Decimal(
            info["topped_up_balance"]
        )


def test_an_unknown_path_is_a_404_with_the_error_envelope() -> None:
    with running_simulator() as url:
        response = httpx.get(f"{url}/nope", headers=AUTH)
        assert response.status_code == 404
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}
