"""The composer estimates a message's cost at the price the ledger will charge: the model's
dated price in force today, not its base price."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from conversations.models import Conversation, ModelConfig, ModelPrice, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def composer_input_price(user: User, conversation: Conversation, model: ModelConfig) -> float:
    html = client_for(user).get(f"/c/{conversation.pk}/").content.decode()
    match = re.search(r'<script id="page-data" type="application/json">(.*?)</script>', html, re.S)
    assert match
    models = json.loads(match.group(1))["models"]
    price: float = next(m for m in models if m["name"] == model.name)["price_input_per_million"]
    return price


def dated_price(model: ModelConfig, day: date, miss: str) -> None:
    ModelPrice.objects.create(
        model=model,
        effective_from=day,
        input_cache_hit=Decimal("1"),
        input_cache_miss=Decimal(miss),
        output=Decimal("20"),
    )


def test_the_composer_prices_input_at_the_dated_price_in_force_today(
    alice: User, chat_model: ModelConfig, alice_conversation: Conversation
) -> None:
    today = timezone.localdate()
    assert composer_input_price(alice, alice_conversation, chat_model) == float(
        chat_model.price_input_cache_miss
    )
    dated_price(chat_model, today - timedelta(days=400), "10")
    dated_price(chat_model, today, "12")
    dated_price(chat_model, today + timedelta(days=1), "99")  # not yet
    assert composer_input_price(alice, alice_conversation, chat_model) == 12.0
