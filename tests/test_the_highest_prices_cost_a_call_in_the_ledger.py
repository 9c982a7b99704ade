"""The highest prices the model admin accepts (999999.9999 USD per 1M tokens) still cost a
large call in the ledger: the cost column held less than a million dollars a call, and a
settlement past it failed ("numeric field overflow"), leaving the call reserved."""

from __future__ import annotations

from decimal import Decimal

import pytest

from conversations import quota
from conversations.models import ModelConfig, Policy, UsageRecord, User
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db

HIGHEST = "999999.9999"


def test_a_call_at_the_highest_accepted_prices_is_settled_and_costed(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    client = client_for(staff)
    page = f"/admin/conversations/modelconfig/{chat_model.pk}/change/"
    prices = {
        f"price_{kind}": HIGHEST for kind in ("input_cache_hit", "input_cache_miss", "output")
    }
    response = client.post(page, admin_form(client, page, **prices))
    assert response.status_code == 302, response.content.decode()[:3000]
    chat_model.refresh_from_db()

    Policy.objects.all().delete()  # no limits but the model's
    record = quota.admit(
        alice, chat_model, purpose="chat", prompt_tokens=1_000_000, max_tokens=8000
    )
    usage = {"prompt_tokens": 1_000_000, "prompt_cache_hit_tokens": 0, "completion_tokens": 8000}
    assert quota.settle(record.pk, outcome="complete", usage=usage)

    settled = UsageRecord.objects.get(pk=record.pk)
    assert settled.state == "settled"
    assert settled.cost == Decimal(HIGHEST) * 1_008_000 / 1_000_000
    assert settled.cost == quota.cost_of(chat_model, quota.counts_from_usage(usage))
