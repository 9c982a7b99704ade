"""An API key's admin page offers no Save: nothing on it may be changed (a key is revoked by
the list's action, deleted by its link). Its Save buttons said "changed successfully" of a
change that was never made; an acceptance walk-through took it for a way to change the expiry."""

from __future__ import annotations

import pytest

from conversations import api_keys
from conversations.models import User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_a_keys_page_has_no_save_but_can_be_deleted(alice: User, staff: User) -> None:
    key = api_keys.create_key(alice, name="laptop").key
    page = client_for(staff).get(f"/admin/conversations/apikey/{key.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "laptop" in html
    assert 'name="_save"' not in html and 'name="_continue"' not in html
    assert f"/admin/conversations/apikey/{key.pk}/delete/" in html
