"""A model's default output budget (``default_max_tokens``, sent as max_tokens when a reply
asks for none) is refused above the model's output limit or at 0: every such reply would send
the upstream a max_tokens that it refuses."""

from __future__ import annotations

import pytest

from conversations.models import ModelConfig, User
from tests.support import client_for
from tests.test_audit_of_dated_prices import model_page_form

pytestmark = pytest.mark.django_db


def page(model: ModelConfig) -> str:
    return f"/admin/conversations/modelconfig/{model.pk}/change/"


@pytest.mark.parametrize("default", ["10000", "0"])
def test_a_default_output_budget_outside_the_output_limit_is_refused(
    staff: User, chat_model: ModelConfig, default: str
) -> None:
    before = chat_model.default_max_tokens
    form = {
        **model_page_form(chat_model, [], initial=0),
        "max_output_tokens": "8192",
        "default_max_tokens": default,
    }
    response = client_for(staff).post(page(chat_model), form)
    assert response.status_code == 200  # the form again, with the error
    assert "default_max_tokens" in response.content.decode()
    chat_model.refresh_from_db()
    assert chat_model.default_max_tokens == before


def test_a_default_at_the_output_limit_is_saved(staff: User, chat_model: ModelConfig) -> None:
    form = {
        **model_page_form(chat_model, [], initial=0),
        "max_output_tokens": "8192",
        "default_max_tokens": "8192",
    }
    assert client_for(staff).post(page(chat_model), form).status_code == 302
    chat_model.refresh_from_db()
    assert (chat_model.max_output_tokens, chat_model.default_max_tokens) == (8192, 8192)
