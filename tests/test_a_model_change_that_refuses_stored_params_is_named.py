"""An admin who changes a model so that it refuses parameters conversations keep (a capability
unticked, a lower output limit) is told how many conversations, which parameters, and what
follows: their next message is refused naming the parameter until it is changed in the
conversation's settings. The change was saved without a word, and the admin learnt of it from
the users."""

from __future__ import annotations

import html
import re

import pytest
from django.utils import timezone

from conversations import actions
from conversations.errors import InvalidParameter
from conversations.models import Conversation, ModelConfig, User
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db


def page(model: ModelConfig) -> str:
    return f"/admin/conversations/modelconfig/{model.pk}/change/"


def warnings(response: object) -> list[str]:
    text = response.content.decode()  # type: ignore[attr-defined]
    found = re.findall(r'<li class="warning">(.*?)</li>', text, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", w)) for w in found]


def test_unticking_a_capability_and_lowering_the_limit_names_the_conversations_refused(
    staff: User, alice: User, chat_model: ModelConfig, reasoner_model: ModelConfig
) -> None:
    def chat(params: dict[str, object], **extra: object) -> Conversation:
        return Conversation.objects.create(owner=alice, model=chat_model, params=params, **extra)

    chat({"logprobs": True, "top_logprobs": 3})
    chat({"logprobs": True, "temperature": 0.2})
    chat({"max_tokens": 8000})
    chat({"max_tokens": 2000, "logprobs": False})  # still accepted
    chat({})
    chat({"logprobs": True}, deleted_at=timezone.now())  # deleted: no one will send to it
    Conversation.objects.create(owner=alice, model=reasoner_model, params={"max_tokens": 8000})

    admin = client_for(staff)
    form = admin_form(admin, page(chat_model), supports_logprobs=None, max_output_tokens="4096")
    response = admin.post(page(chat_model), form, follow=True)
    assert response.status_code == 200
    chat_model.refresh_from_db()
    assert (chat_model.supports_logprobs, chat_model.max_output_tokens) == (False, 4096)

    [warning] = warnings(response)
    assert warning.startswith(
        "3 conversations of deepseek-chat keep parameters it now refuses "
        "(logprobs: 2, max_tokens: 1)."
    ), warning
    assert "conversation's settings" in warning
    assert f"?model__id__exact={chat_model.pk}" in response.content.decode()

    # What the warning says follows: the owner is told which parameter, and can change it.
    refused = Conversation.objects.get(params={"max_tokens": 8000}, model=chat_model)
    with pytest.raises(InvalidParameter) as error:
        actions.send_message(alice, refused.id, client_id="c1", content="Hello")
    assert error.value.param == "max_tokens"
    assert "4096" in error.value.message


def test_a_change_that_refuses_nothing_warns_of_nothing(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    Conversation.objects.create(owner=alice, model=chat_model, params={"logprobs": True})
    admin = client_for(staff)
    # Prices are not parameters; a lower limit that every conversation is within.
    form = admin_form(admin, page(chat_model), price_output="9", max_output_tokens="6000")
    response = admin.post(page(chat_model), form, follow=True)
    assert response.status_code == 200
    chat_model.refresh_from_db()
    assert chat_model.max_output_tokens == 6000
    assert warnings(response) == []
