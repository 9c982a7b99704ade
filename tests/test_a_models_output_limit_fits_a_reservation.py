"""A model's output limit (and so its default output budget) is refused where a reservation of
it would not fit the ledger's 32-bit token counts: saved, every call of the model failed at
admission as an internal error ("integer out of range")."""

from __future__ import annotations

import pytest

from conversations import quota
from conversations.models import MAX_OUTPUT_TOKENS, ModelConfig, Policy, User
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db


def page(model: ModelConfig) -> str:
    return f"/admin/conversations/modelconfig/{model.pk}/change/"


def test_an_output_limit_too_large_to_reserve_is_refused(
    staff: User, chat_model: ModelConfig
) -> None:
    client = client_for(staff)
    huge = str(2**31 - 1)  # the most the column holds
    form = admin_form(client, page(chat_model), max_output_tokens=huge, default_max_tokens=huge)
    response = client.post(page(chat_model), form)
    assert response.status_code == 200  # the form again, with the error
    assert f"Ensure this value is less than or equal to {MAX_OUTPUT_TOKENS}" in (
        response.content.decode()
    )
    chat_model.refresh_from_db()
    assert (chat_model.max_output_tokens, chat_model.default_max_tokens) == (8192, 4096)


def test_a_model_at_the_largest_output_limit_admits_its_calls(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    client = client_for(staff)
    most = str(MAX_OUTPUT_TOKENS)
    # (A context window that holds it: a reply is part of the context.)
    form = admin_form(
        client,
        page(chat_model),
        context_window=most,
        max_output_tokens=most,
        default_max_tokens=most,
    )
    assert client.post(page(chat_model), form).status_code == 302
    chat_model.refresh_from_db()
    Policy.objects.all().delete()  # no limits but the model's
    # A reply asking for no max_tokens reserves the model's default, with a large prompt.
    record = quota.admit(
        alice, chat_model, purpose="chat", prompt_tokens=1_000_000, max_tokens=None
    )
    assert record.reserved_tokens == (1_000_000 * 11 // 10 + quota.PROMPT_SLACK + MAX_OUTPUT_TOKENS)
