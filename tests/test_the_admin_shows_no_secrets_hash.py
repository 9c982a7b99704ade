"""The admin's pages of an API key and of a share link never show the secret's hash (the audit
log keeps none either): whoever reads it could test guesses offline."""

from __future__ import annotations

import pytest
from django.utils import timezone

from conversations import api_keys, sharing
from conversations.models import Conversation, User
from tests.support import admin_form, client_for

pytestmark = pytest.mark.django_db


def test_a_keys_page_shows_its_name_and_prefix_not_its_hash(alice: User, staff: User) -> None:
    key = api_keys.create_key(alice, name="laptop").key
    page = client_for(staff).get(f"/admin/conversations/apikey/{key.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert key.prefix in html and "laptop" in html
    assert key.hashed not in html


def test_a_share_links_page_shows_no_hash_and_can_still_be_revoked(
    alice: User, alice_conversation: Conversation, staff: User
) -> None:
    link, _ = sharing.create_share_link(alice, alice_conversation.id)
    hashed = link.hashed
    client = client_for(staff)
    url = f"/admin/conversations/sharelink/{link.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert link.hashed not in page.content.decode()
    now = timezone.localtime()
    response = client.post(
        url,
        admin_form(client, url, revoked_at_0=f"{now:%Y-%m-%d}", revoked_at_1=f"{now:%H:%M:%S}"),
    )
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert link.hashed == hashed  # the form leaves it as it was


def test_an_accounts_page_shows_no_password_hash(alice: User, staff: User) -> None:
    """Django shows a password as a masked summary; no copy of the field (a hidden "initial"
    one, say) may put the hash itself on the page."""
    alice.set_password("correct horse battery staple")
    alice.save(update_fields=["password"])
    page = client_for(staff).get(f"/admin/conversations/user/{alice.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    hashed = alice.password.split("$")
    assert hashed[-1] not in html and hashed[-2] not in html  # neither its hash nor its salt
