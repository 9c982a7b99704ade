"""A model's prices, on the model and dated, are never negative: a negative price would credit
every call it costs, and the dashboards' costs would go down."""

from __future__ import annotations

from decimal import Decimal

import pytest

from conversations.models import ModelConfig, ModelPrice, User
from tests.support import client_for
from tests.test_audit_of_dated_prices import model_page_form

pytestmark = pytest.mark.django_db


def page(model: ModelConfig) -> str:
    return f"/admin/conversations/modelconfig/{model.pk}/change/"


@pytest.mark.parametrize(
    "field", ["price_input_cache_hit", "price_input_cache_miss", "price_output"]
)
def test_a_negative_model_price_is_refused(
    staff: User, chat_model: ModelConfig, field: str
) -> None:
    before = getattr(chat_model, field)
    form = {**model_page_form(chat_model, [], initial=0), field: "-1"}
    response = client_for(staff).post(page(chat_model), form)
    assert response.status_code == 200  # the form again, with the error
    chat_model.refresh_from_db()
    assert getattr(chat_model, field) == before


@pytest.mark.parametrize("field", ["input_cache_hit", "input_cache_miss", "output"])
def test_a_negative_dated_price_is_refused(
    staff: User, chat_model: ModelConfig, field: str
) -> None:
    row = {
        "effective_from": "2026-01-01",
        "input_cache_hit": "0.01",
        "input_cache_miss": "0.1",
        "output": "1",
        field: "-0.5",
    }
    response = client_for(staff).post(page(chat_model), model_page_form(chat_model, [row], 0))
    assert response.status_code == 200
    assert not ModelPrice.objects.filter(model=chat_model).exists()


def test_valid_values_are_still_saved(staff: User, chat_model: ModelConfig) -> None:
    form = {
        **model_page_form(chat_model, [], initial=0),
        "price_output": "0",
    }
    assert client_for(staff).post(page(chat_model), form).status_code == 302
    chat_model.refresh_from_db()
    assert chat_model.price_output == Decimal(0)
