"""People manage their own keys on /settings/api-keys/: create (shown once), list, revoke; nobody
sees or revokes another person's key. ``manage.py create_api_key`` prints a new key."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from conversations import api_keys
from conversations.models import ApiKey, AuditEntry, User
from tests.support import client_for

pytestmark = pytest.mark.django_db

PAGE = "/settings/api-keys/"
KEY = re.compile(r"sk-team-[A-Za-z0-9_-]{40}")


def test_the_page_needs_a_signed_in_user(client: Client) -> None:
    response = client.get(PAGE)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_new_key_is_shown_once_and_stored_only_as_a_hash(alice: User) -> None:
    client = client_for(alice)
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    response = client.post(
        PAGE, {"name": "laptop scripts", "expires_at": tomorrow, "save_history": "on"}
    )
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    [secret] = set(KEY.findall(response.content.decode()))
    key = ApiKey.objects.get(user=alice)
    assert key.name == "laptop scripts" and key.save_history
    assert key.hashed == api_keys.hash_key(secret) and key.prefix == secret[:12]
    assert key.expires_at is not None and key.expires_at > timezone.now() + timedelta(days=1)
    assert AuditEntry.objects.filter(
        action="create", target_type="apikey", target_id=str(key.pk)
    ).exists()
    listing = client.get(PAGE).content.decode()
    assert "laptop scripts" in listing and secret[:12] in listing and secret not in listing
    assert "never" in listing  # not used yet


def test_a_key_needs_a_name_and_a_future_expiry(alice: User) -> None:
    client = client_for(alice)
    assert client.post(PAGE, {"name": "  "}).status_code == 400
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    response = client.post(PAGE, {"name": "old", "expires_at": yesterday})
    assert response.status_code == 400 and "future" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_owners_revoke_their_keys_and_nobody_elses(alice: User, bob: User) -> None:
    alices = api_keys.create_key(alice, name="a").key
    bobs = api_keys.create_key(bob, name="b").key
    client = client_for(alice)
    assert client.post(f"{PAGE}{bobs.pk}/revoke/").status_code == 404
    assert client.post(f"{PAGE}{bobs.pk}/history/", {"save_history": "on"}).status_code == 404
    assert "b" not in [k.name for k in api_keys.keys_of(alice)]
    assert client.get(f"{PAGE}{alices.pk}/revoke/").status_code == 405
    assert client.post(f"{PAGE}{alices.pk}/revoke/").status_code == 302
    alices.refresh_from_db()
    bobs.refresh_from_db()
    assert alices.revoked_at is not None and bobs.revoked_at is None
    assert "revoked" in client.get(PAGE).content.decode()
    entry = AuditEntry.objects.get(action="revoke")
    assert entry.actor == alice and entry.target_id == str(alices.pk)


def test_staff_revoke_any_key_through_the_action(alice: User, staff: User) -> None:
    key = api_keys.create_key(alice, name="a").key
    assert api_keys.revoke_key(key, staff)
    assert AuditEntry.objects.get(action="revoke").actor == staff


def test_saving_to_history_can_be_switched_per_key(alice: User) -> None:
    key = api_keys.create_key(alice, name="a").key
    client = client_for(alice)
    client.post(f"{PAGE}{key.pk}/history/", {"save_history": "on"})
    key.refresh_from_db()
    assert key.save_history
    client.post(f"{PAGE}{key.pk}/history/", {})
    key.refresh_from_db()
    assert not key.save_history


def test_the_command_prints_a_working_key(alice: User) -> None:
    out = io.StringIO()
    call_command("create_api_key", "alice", "--name", "ci", stdout=out)
    secret = out.getvalue().strip()
    assert KEY.fullmatch(secret)
    key = ApiKey.objects.get(hashed=api_keys.hash_key(secret))
    assert key.name == "ci" and key.user_id == alice.pk and key.revoked_at is None
    with pytest.raises(CommandError, match="No user"):
        call_command("create_api_key", "nobody", stdout=io.StringIO())


def test_sending_the_creation_form_again_creates_no_second_key(alice: User) -> None:
    """Reloading the page that shows a new key sends its form again: that created a second key
    (the answer shows the key itself, so it cannot be a redirect)."""
    client = client_for(alice)
    form = re.search(r'name="form_id" value="([^"]+)"', client.get(PAGE).content.decode())
    assert form is not None
    fields = {"name": "laptop", "form_id": form.group(1)}
    assert client.post(PAGE, fields).status_code == 201
    again = client.post(PAGE, fields)
    assert again.status_code == 409
    assert "already sent" in again.content.decode()
    assert not KEY.findall(again.content.decode())
    assert ApiKey.objects.filter(user=alice).count() == 1

    # A new form (the page loaded again) creates a key as usual.
    form = re.search(r'name="form_id" value="([^"]+)"', again.content.decode())
    assert form is not None and form.group(1) != fields["form_id"]
    assert client.post(PAGE, {"name": "desktop", "form_id": form.group(1)}).status_code == 201
    assert ApiKey.objects.filter(user=alice).count() == 2
