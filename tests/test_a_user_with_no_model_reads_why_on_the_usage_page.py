"""A user whose policy allows no enabled model reads why on their usage page too, as on the
chat's: the page said only "no daily limit", "no monthly limit", as if they could chat freely."""

from __future__ import annotations

import pytest

from conversations.models import ModelConfig, Policy, User, UserLimits
from tests.support import client_for

pytestmark = pytest.mark.django_db

WHY = (
    "No model is available to you: the models your policy “Chat only” allows are all disabled "
    "at the moment. Ask an administrator."
)


def test_the_usage_page_says_no_model_is_available_and_why(
    alice: User, chat_model: ModelConfig
) -> None:
    client = client_for(alice)
    assert WHY not in client.get("/usage/").content.decode()  # every model for now

    policy = Policy.objects.create(name="Chat only", all_models=False)
    policy.allowed_models.add(chat_model)
    UserLimits.objects.create(user=alice, policy=policy)
    assert WHY not in client.get("/usage/").content.decode()  # its model is enabled

    ModelConfig.objects.filter(pk=chat_model.pk).update(enabled=False)
    html = client.get("/usage/").content.decode()
    assert f'<p class="usage-warning" role="alert">{WHY}</p>' in html.replace("&#x27;", "'")
