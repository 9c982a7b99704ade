"""Every page names its icon, so that no browser asks for /favicon.ico (a 404, logged as one)
on each page it loads: the site's pages, the admin's, and the usage dashboard in the admin's
look."""

from __future__ import annotations

import pytest

from conversations.models import User
from tests.support import client_for

ICON = '<link rel="icon" href="data:,">'


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/usage/",
        "/admin/",
        "/admin/conversations/modelconfig/",
        "/admin/conversations/modelconfig/add/",
        "/admin/usage/",
    ],
)
def test_the_page_names_an_icon(staff: User, url: str) -> None:
    response = client_for(staff).get(url)
    assert response.status_code == 200, url
    assert response.content.decode().count(ICON) == 1, url
