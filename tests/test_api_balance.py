"""``GET /user/balance`` reports the user's remaining token allowance in DeepSeek's shape,
counted in tokens, and it goes down as the API is used."""

from __future__ import annotations

import json

import httpx
import pytest

from conversations.models import ModelConfig, Policy, User, UserLimits
from tests.test_api_support import bearer, chat, make_key

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _balance(base: str, key: str) -> dict[str, object]:
    response = httpx.get(base + "/user/balance", headers=bearer(key))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return dict(response.json())


def test_the_balance_is_the_remaining_tokens_and_shrinks_with_use(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=10_000)
    key = make_key(alice)
    before = _balance(base, key)
    assert before == {
        "is_available": True,
        "balance_infos": [
            {
                "currency": "TOKENS",
                "total_balance": "10000.00",
                "granted_balance": "10000.00",
                "topped_up_balance": "0.00",
            }
        ],
    }
    used = chat(base, bearer(key), max_tokens=20).json()["usage"]["total_tokens"]
    after = _balance(base, key)
    assert after["balance_infos"][0]["total_balance"] == f"{10_000 - used}.00"  # type: ignore[index]


@pytest.mark.parametrize("stream", [False, True])
def test_a_balance_read_right_after_an_answer_counts_it(
    base: str, alice: User, chat_model: ModelConfig, stream: bool
) -> None:
    # An answer is settled just after its last byte has gone out; a balance read on the heels
    # of it (one kept-alive connection, as an SDK's) waits for that settlement, and so counts
    # what the call used, not what was reserved for it.
    UserLimits.objects.create(user=alice, tokens_per_day=100_000)
    headers = bearer(make_key(alice))
    body = {
        "model": "deepseek-chat",
        "messages": [{"role": "user", "content": "Hello"}],
        "stream": stream,
        "stream_options": {"include_usage": True} if stream else None,
    }
    spent = 0
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(20):
            answer = client.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200, answer.text
            if stream:
                usage = json.loads(answer.text.split("data: ")[-2])["usage"]
            else:
                usage = answer.json()["usage"]
            spent += usage["total_tokens"]
            balance = client.get("/user/balance").json()["balance_infos"][0]
            assert balance["total_balance"] == f"{100_000 - spent}.00"


def test_with_no_token_limit_the_balance_is_the_largest_a_limit_can_be(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    # Scripts read balance_infos[0] (DeepSeek always sends an entry): an unlimited user's is
    # there too, with an amount no limit can reach and that every client parses as a number.
    unlimited = f"{2**63 - 1}.00"
    assert _balance(base, make_key(alice)) == {
        "is_available": True,
        "balance_infos": [
            {
                "currency": "TOKENS",
                "total_balance": unlimited,
                "granted_balance": unlimited,
                "topped_up_balance": "0.00",
            }
        ],
    }
    assert float(unlimited) > 0


def test_an_exhausted_allowance_is_not_available(
    base: str, alice: User, chat_model: ModelConfig
) -> None:
    UserLimits.objects.create(user=alice, tokens_per_day=200)
    key = make_key(alice)
    while chat(base, bearer(key), max_tokens=1).status_code == 200:
        pass
    UserLimits.objects.filter(user=alice).update(tokens_per_day=1)
    balance = _balance(base, key)
    assert balance["is_available"] is False
    assert balance["balance_infos"][0]["total_balance"] == "0.00"  # type: ignore[index]


def test_a_user_whose_own_daily_limit_is_unlimited_has_no_limit_and_is_admitted(
    base: str, alice: User, bob: User, chat_model: ModelConfig
) -> None:
    """The policy allows 100 tokens a day; Alice's own limit lifts it, Bob inherits it."""
    Policy.objects.all().delete()
    Policy.objects.create(name="Default", is_default=True, tokens_per_day=100)
    UserLimits.objects.create(user=alice, tokens_per_day_unlimited=True)
    UserLimits.objects.create(user=bob)
    alice_key, bob_key = make_key(alice), make_key(bob)

    unlimited = f"{2**63 - 1}.00"
    assert _balance(base, alice_key)["balance_infos"][0]["total_balance"] == unlimited  # type: ignore[index]
    assert _balance(base, bob_key)["balance_infos"][0]["total_balance"] == "100.00"  # type: ignore[index]
    # Admitted through the API's own statement for far more than the policy's day.
    assert chat(base, bearer(alice_key), max_tokens=8_000).status_code == 200
    assert chat(base, bearer(bob_key), max_tokens=8_000).status_code == 429
