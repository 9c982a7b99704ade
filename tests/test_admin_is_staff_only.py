from __future__ import annotations

import pytest
from django.test import Client

from conversations.models import User
from tests.support import client_for


@pytest.mark.django_db
def test_anonymous_and_non_staff_users_cannot_reach_the_admin(alice: User) -> None:
    for client in (Client(), client_for(alice)):
        for url in [
            "/admin/",
            "/admin/conversations/modelconfig/",
            "/admin/conversations/message/",
        ]:
            response = client.get(url)
            assert response.status_code == 302, url
            assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_staff_see_the_registry_in_the_admin(staff: User) -> None:
    response = client_for(staff).get("/admin/conversations/modelconfig/")
    assert response.status_code == 200
    assert "deepseek-reasoner" in response.content.decode()
