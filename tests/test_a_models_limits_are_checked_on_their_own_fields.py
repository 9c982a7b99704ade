"""A model's limits in the registry are each refused on their own field when wrong: an output
limit of 0 (the upstream refuses max_tokens of 0; the error showed on "default max tokens"
instead), a context window of 0, or one smaller than the output limit (the reply is part of
the context). Both were saved without a word."""

from __future__ import annotations

import pytest

from conversations.models import ModelConfig, User
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db


def page(model: ModelConfig) -> str:
    return f"/admin/conversations/modelconfig/{model.pk}/change/"


def errors_on_saving(staff: User, model: ModelConfig, **changes: str) -> dict[str, list[str]]:
    """The errors the model's page shows, field by field, once ``changes`` are saved."""
    client = client_for(staff)
    response = client.post(page(model), admin_form(client, page(model), **changes))
    if response.status_code == 302:
        return {}
    assert response.status_code == 200
    form = response.context["adminform"].form
    return {field: list(messages) for field, messages in form.errors.items()}


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        (
            {"max_output_tokens": "0", "default_max_tokens": "4096"},
            "max_output_tokens",
            "at least 1",
        ),
        ({"max_output_tokens": "0", "default_max_tokens": "0"}, "max_output_tokens", "at least 1"),
        ({"context_window": "0"}, "context_window", "at least 1"),
        ({"context_window": "4096", "max_output_tokens": "8192"}, "context_window", "8,192"),
        # One token, not "1 tokens".
        ({"context_window": "1"}, "context_window", "The context window (1 token) is smaller"),
    ],
)
def test_a_wrong_limit_is_refused_on_its_own_field(
    staff: User, chat_model: ModelConfig, changes: dict[str, str], field: str, says: str
) -> None:
    before = ModelConfig.objects.filter(pk=chat_model.pk).values().get()

    errors = errors_on_saving(staff, chat_model, **changes)

    assert list(errors) == [field], errors
    assert says in errors[field][0], errors
    assert ModelConfig.objects.filter(pk=chat_model.pk).values().get() == before


def test_a_context_window_as_large_as_the_output_limit_is_saved(
    staff: User, chat_model: ModelConfig
) -> None:
    changes = {"context_window": "8192", "max_output_tokens": "8192", "default_max_tokens": "1"}
    assert errors_on_saving(staff, chat_model, **changes) == {}
    chat_model.refresh_from_db()
    assert (chat_model.context_window, chat_model.max_output_tokens) == (8192, 8192)
    assert chat_model.default_max_tokens == 1
