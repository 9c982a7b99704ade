from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from simulator.testing import running_simulator

BODY = {"model": "deepseek-flash", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def keyed_url() -> Iterator[str]:
    with running_simulator(api_key="sk-alice0000000000000000000000ab12") as url:
        yield url


@pytest.fixture(scope="module")
def open_url() -> Iterator[str]:
    with running_simulator() as url:
        yield url


def test_a_request_without_authorization_is_a_401_asking_for_bearer(keyed_url: str) -> None:
    response = httpx.post(f"{keyed_url}/chat/completions", json=BODY)
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": "Authentication Fails (auth header format should be Bearer sk-...)",
            "type": "authentication_error",
            "param": None,
            "code": "invalid_request_error",
        }
    }


def test_a_header_that_is_not_bearer_gets_the_format_message(keyed_url: str) -> None:
    response = httpx.post(
        f"{keyed_url}/chat/completions", json=BODY, headers={"Authorization": "Token sk-x"}
    )
    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]["message"]


def test_an_x_api_key_header_alone_is_not_accepted(keyed_url: str) -> None:
    response = httpx.post(
        f"{keyed_url}/chat/completions",
        json=BODY,
        headers={"X-API-Key": "sk-alice0000000000000000000000ab12"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("Authentication Fails (auth header")


def test_an_unknown_key_is_a_401_echoing_its_last_four_characters(keyed_url: str) -> None:
    response = httpx.post(
        f"{keyed_url}/chat/completions",
        json=BODY,
        headers={"Authorization": "Bearer sk-charlie9f3c"},
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["message"] == "Authentication Fails, Your api key: ****9f3c is invalid"
    assert error["type"] == "authentication_error"


def test_the_configured_key_is_accepted(keyed_url: str) -> None:
    response = httpx.post(
        f"{keyed_url}/chat/completions",
        json=BODY,
        headers={"Authorization": "Bearer sk-alice0000000000000000000000ab12"},
    )
    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"


def test_without_a_configured_key_any_sk_key_is_accepted(open_url: str) -> None:
    for key in ("sk-bob", "sk-0123456789abcdef"):
        response = httpx.post(
            f"{open_url}/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200


def test_without_a_configured_key_a_non_sk_key_is_invalid(open_url: str) -> None:
    response = httpx.post(
        f"{open_url}/chat/completions", json=BODY, headers={"Authorization": "Bearer abcdwxyz"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["message"].endswith("****wxyz is invalid")


def test_models_and_balance_also_need_the_key(keyed_url: str) -> None:
    assert httpx.get(f"{keyed_url}/models").status_code == 401
    assert httpx.get(f"{keyed_url}/user/balance").status_code == 401
