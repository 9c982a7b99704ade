"""A key authenticates exactly as the API reference says: ``Authorization: Bearer <key>`` or
``X-API-Key: <key>``, one of them; everything else is DeepSeek's 401 (or 400 for both)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from django.utils import timezone

from conversations import api_keys
from conversations.models import ApiKey, ModelConfig, UsageRecord, User, UserLimits
from tests.test_api_support import assert_envelope, bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def key(alice: User, chat_model: ModelConfig) -> str:
    return make_key(alice)


def _refused(response: httpx.Response, key: str = "", why: str = "") -> dict[str, Any]:
    error = assert_envelope(response, 401, "authentication_error")
    assert error["code"] == "invalid_request_error" and error["param"] is None
    if why:
        assert error["message"] == f"Authentication Fails, Your api key: ****{key[-4:]} {why}"
    return error


def test_a_bearer_key_works_on_both_base_urls(base: str, key: str) -> None:
    for path in ("/v1/chat/completions", "/chat/completions"):
        response = chat(base, bearer(key), path=path)
        assert response.status_code == 200, response.text
        assert response.json()["object"] == "chat.completion"


def test_an_x_api_key_header_works_too(base: str, key: str) -> None:
    assert chat(base, {"X-API-Key": key}).status_code == 200
    assert httpx.get(base + "/models", headers={"X-API-Key": key}).status_code == 200


def test_both_headers_at_once_are_refused_with_a_400_explaining_the_choice(
    base: str, key: str, alice: User
) -> None:
    response = chat(base, {**bearer(key), "X-API-Key": key})
    error = assert_envelope(response, 400, "invalid_request_error")
    assert "Authorization" in error["message"] and "X-API-Key" in error["message"]
    assert not UsageRecord.objects.exists()


def test_a_header_sent_empty_is_not_a_second_key(base: str, key: str) -> None:
    """A client's default header left blank beside the one that carries the key."""
    assert chat(base, {**bearer(key), "X-API-Key": ""}).status_code == 200
    assert chat(base, {"Authorization": "", "X-API-Key": key}).status_code == 200
    error = _refused(chat(base, {"Authorization": "", "X-API-Key": ""}))
    assert "Bearer" in error["message"]


def test_a_missing_or_malformed_header_is_a_401_asking_for_bearer(base: str, key: str) -> None:
    malformed: list[dict[str, str]] = [
        {},
        {"Authorization": key},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
    ]
    for headers in malformed:
        error = _refused(chat(base, headers))
        assert "Bearer" in error["message"]
    _refused(httpx.get(base + "/v1/models"))
    _refused(httpx.get(base + "/user/balance"))


def test_an_unknown_key_is_refused_echoing_only_its_last_four_characters(
    base: str, key: str
) -> None:
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    error = _refused(chat(base, bearer(forged)))
    assert error["message"] == f"Authentication Fails, Your api key: ****{forged[-4:]} is invalid"
    assert key[8:-4] not in error["message"]
    _refused(chat(base, bearer("sk-not-even-our-format")))


def test_a_revoked_key_stops_working_at_once(base: str, key: str, alice: User) -> None:
    assert chat(base, bearer(key)).status_code == 200
    row = ApiKey.objects.get(user=alice)
    assert api_keys.revoke_key(row, alice)
    assert not api_keys.revoke_key(row, alice)  # a second revocation changes nothing
    _refused(chat(base, bearer(key)), key, "has been revoked")
    _refused(httpx.get(f"{base}/models", headers=bearer(key)), key, "has been revoked")


def test_an_expired_key_is_refused(base: str, alice: User, chat_model: ModelConfig) -> None:
    secret = make_key(alice, expires_at=timezone.now() + timedelta(seconds=60))
    assert chat(base, bearer(secret)).status_code == 200
    ApiKey.objects.filter(user=alice).update(expires_at=timezone.now() - timedelta(seconds=1))
    _refused(chat(base, bearer(secret)), secret, "has expired")


def test_an_inactive_or_suspended_user_is_refused(base: str, key: str, alice: User) -> None:
    User.objects.filter(pk=alice.pk).update(is_active=False)
    _refused(chat(base, bearer(key)), key, "is invalid")
    User.objects.filter(pk=alice.pk).update(is_active=True)
    assert chat(base, bearer(key)).status_code == 200
    UserLimits.objects.create(user=alice, suspended=True)
    suspended = "belongs to a suspended account; ask your administrator"
    _refused(chat(base, bearer(key)), key, suspended)
    _refused(httpx.get(f"{base}/user/balance", headers=bearer(key)), key, suspended)


def test_the_key_is_stored_hashed_and_last_use_is_written_at_most_once_a_minute(
    base: str, key: str, alice: User
) -> None:
    row = ApiKey.objects.get(user=alice)
    assert key not in (row.hashed, row.prefix) and row.hashed == api_keys.hash_key(key)
    assert key.startswith("sk-team-") and len(key) == len("sk-team-") + 40
    assert row.prefix == key[:12] and row.last_used_at is None
    assert chat(base, bearer(key)).status_code == 200
    first = ApiKey.objects.get(pk=row.pk).last_used_at
    assert first is not None
    assert chat(base, bearer(key)).status_code == 200
    assert ApiKey.objects.get(pk=row.pk).last_used_at == first
    ApiKey.objects.filter(pk=row.pk).update(last_used_at=first - timedelta(minutes=2))
    assert chat(base, bearer(key)).status_code == 200
    assert ApiKey.objects.get(pk=row.pk).last_used_at > first  # type: ignore[operator]


def test_a_session_is_not_a_key(base: str, key: str, alice: User) -> None:
    from tests.servers import session_cookie

    response = httpx.post(
        base + "/v1/chat/completions",
        cookies={"sessionid": session_cookie(alice)},
        json={"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}]},
    )
    _refused(response)
