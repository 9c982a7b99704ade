"""Alice's policy allows no API access. Her keys page offered "Create key" and how to call the
API, and said nothing: every call with her key was then refused (403 api_access_denied). Now
the page says so, and still lets her manage her keys (revoking above all)."""

from __future__ import annotations

import pytest

from conversations import api_keys
from conversations.models import Policy, User
from tests.support import client_for

pytestmark = pytest.mark.django_db

PAGE = "/settings/api-keys/"
NOTICE = "Your policy does not allow API access"


def test_the_keys_page_says_the_api_is_refused_and_still_revokes(alice: User) -> None:
    new = api_keys.create_key(alice, name="laptop")
    client = client_for(alice)
    assert NOTICE not in client.get(PAGE).content.decode()

    Policy.objects.filter(is_default=True).update(api_access=False)
    page = client.get(PAGE).content.decode()
    assert NOTICE in page and "api_access_denied" in page
    assert "laptop" in page and f"/settings/api-keys/{new.key.pk}/revoke/" in page

    assert client.post(f"/settings/api-keys/{new.key.pk}/revoke/").status_code == 302
    new.key.refresh_from_db()
    assert new.key.revoked_at is not None
