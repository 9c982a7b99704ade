"""A model's dated prices, edited inline on the model's admin page, are audited like the model:
who added, changed or deleted which price, with its before and after."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from conversations.models import AuditEntry, ModelConfig, ModelPrice, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def model_page_form(model: ModelConfig, prices: list[dict[str, str]], initial: int) -> dict:
    """The model's change form as the admin posts it, unchanged, with these price rows."""
    form = {
        "name": model.name,
        "display_name": model.display_name,
        "enabled": "on",
        "sort_order": str(model.sort_order),
        "upstream_model": model.upstream_model,
        "reasoning_passback": model.reasoning_passback,
        "supports_tools": "on",
        "supports_json": "on",
        "supports_logprobs": "on",
        "context_window": str(model.context_window),
        "max_output_tokens": str(model.max_output_tokens),
        "default_max_tokens": str(model.default_max_tokens),
        "price_input_cache_hit": str(model.price_input_cache_hit),
        "price_input_cache_miss": str(model.price_input_cache_miss),
        "price_output": str(model.price_output),
        "prices-TOTAL_FORMS": str(len(prices)),
        "prices-INITIAL_FORMS": str(initial),
        "prices-MIN_NUM_FORMS": "0",
        "prices-MAX_NUM_FORMS": "1000",
    }
    if model.thinking:
        form["thinking"] = "on"
    for i, price in enumerate(prices):
        form.update({f"prices-{i}-{key}": value for key, value in price.items()})
    return form


def test_adding_changing_and_deleting_a_dated_price_is_audited(
    staff: User, chat_model: ModelConfig
) -> None:
    client = client_for(staff)
    page = f"/admin/conversations/modelconfig/{chat_model.pk}/change/"
    row = {
        "effective_from": "2026-01-01",
        "input_cache_hit": "0.01",
        "input_cache_miss": "0.1",
        "output": "1",
    }

    response = client.post(page, model_page_form(chat_model, [row], initial=0))
    assert response.status_code == 302, response.content.decode()[:3000]
    price = ModelPrice.objects.get(model=chat_model)
    added = AuditEntry.objects.get(target_type="modelprice", action="create")
    assert added.actor == staff and added.target_id == str(price.pk) and added.before is None
    assert added.after["output"] == "1.0000" and added.after["model"] == chat_model.pk

    existing = {"id": str(price.pk), "model": str(chat_model.pk)}
    response = client.post(
        page, model_page_form(chat_model, [{**row, **existing, "output": "99"}], initial=1)
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    changed = AuditEntry.objects.get(target_type="modelprice", action="change")
    assert changed.actor == staff
    assert (changed.before["output"], changed.after["output"]) == ("1.0000", "99.0000")

    response = client.post(
        page,
        model_page_form(chat_model, [{**row, **existing, "output": "99", "DELETE": "on"}], 1),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not ModelPrice.objects.exists()
    deleted = AuditEntry.objects.get(target_type="modelprice", action="delete")
    assert deleted.actor == staff and deleted.target_id == str(price.pk)
    assert deleted.before["output"] == "99.0000" and deleted.after is None
    assert "2026-01-01" in deleted.target_repr
    # The model itself did not change: no entry of its own.
    assert not AuditEntry.objects.filter(target_type="modelconfig").exists()


def test_saving_the_model_page_with_its_prices_unchanged_writes_no_entry(
    staff: User, chat_model: ModelConfig
) -> None:
    price = ModelPrice.objects.create(
        model=chat_model,
        effective_from=date(2026, 1, 1),
        input_cache_hit=Decimal("0.01"),
        input_cache_miss=Decimal("0.1"),
        output=Decimal("1"),
    )
    unchanged = {
        "id": str(price.pk),
        "model": str(chat_model.pk),
        "effective_from": "2026-01-01",
        "input_cache_hit": "0.01",
        "input_cache_miss": "0.1",
        "output": "1",
    }
    response = client_for(staff).post(
        f"/admin/conversations/modelconfig/{chat_model.pk}/change/",
        model_page_form(chat_model, [unchanged], initial=1),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not AuditEntry.objects.exists()


def test_a_price_typed_with_fewer_decimals_than_stored_is_no_change(
    staff: User, chat_model: ModelConfig
) -> None:
    assert str(chat_model.price_input_cache_miss) == "0.1400"
    form = model_page_form(chat_model, [], initial=0)
    form["price_input_cache_miss"] = "0.14"
    response = client_for(staff).post(
        f"/admin/conversations/modelconfig/{chat_model.pk}/change/", form
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not AuditEntry.objects.exists()
