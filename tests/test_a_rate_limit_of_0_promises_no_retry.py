"""A user whose requests per minute (or replies at once) are limited to 0 was told "You may send
at most 0 requests per minute; try again in 48 s." (or "wait for one to finish or stop it",
with nothing running), with a wait to retry after: every retry was refused the same. The
refusal says that the limits allow none and who can change that, and gives no wait."""

from __future__ import annotations

import pytest
from django.db import transaction

from conversations import quota
from conversations.errors import RateLimited, TooManyStreams
from conversations.models import ModelConfig, Policy, User, UserLimits

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("limit", "refusal", "message"),
    [
        (
            "requests_per_minute",
            RateLimited,
            "Your limits allow no requests (0 requests per minute): ask an administrator.",
        ),
        (
            "concurrent_streams",
            TooManyStreams,
            "Your limits allow no replies at once (0 replies running at once): ask an "
            "administrator.",
        ),
    ],
)
def test_a_limit_of_0_is_said_with_no_wait(
    alice: User, chat_model: ModelConfig, limit: str, refusal: type[RateLimited], message: str
) -> None:
    Policy.objects.all().delete()
    UserLimits.objects.create(user=alice, **{limit: 0})
    with pytest.raises(refusal) as refused, transaction.atomic():
        quota.admit(alice, chat_model, purpose="chat", prompt_tokens=1, max_tokens=1)
    assert refused.value.message == message
    assert "retry_after" not in refused.value.extra
