"""A password a user changes themselves is in the audit log, as one an admin sets is: a
``password`` entry by the user, that it was set (never the password nor its hash), from the
chat's page (``/accounts/password/``) and from the admin's own "Change password" (a staff
member's). Neither was recorded: only an admin setting someone else's password was."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from conversations.models import AuditEntry, Conversation, ModelConfig, User
from tests.support import PASSWORD, client_for
from tests.test_signing_out_closes_the_session_s_sockets import socket_of

NEW_PASSWORD = "n3w-Passw0rd!x and more"


def password_entries(user: User) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(target_type="user", target_id=str(user.pk), action="password")
    )


def change(client: object, page: str, old: str = PASSWORD) -> int:
    response = client.post(  # type: ignore[attr-defined]
        page,
        {"old_password": old, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    return int(response.status_code)


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["/accounts/password/", "/admin/password_change/"])
def test_a_users_own_new_password_is_audited(staff: User, page: str) -> None:
    client = client_for(staff)
    assert change(client, page, old="wrong") == 200  # refused: nothing set, nothing recorded
    assert password_entries(staff) == []

    assert change(client, page) == 302
    staff.refresh_from_db()
    assert staff.check_password(NEW_PASSWORD)
    (entry,) = password_entries(staff)
    assert (entry.actor, entry.actor_name) == (staff, staff.username)
    assert (entry.before, entry.after) == (None, {"password": "set"})
    stored = json.dumps([entry.before, entry.after, entry.target_repr])
    assert staff.password not in stored and NEW_PASSWORD not in stored


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(60)
async def test_a_new_password_in_the_admin_closes_the_other_sessions_sockets(
    staff: User, chat_model: ModelConfig, simulator: str
) -> None:
    """As on the chat's own page: the sessions the new password ends lose their sockets."""
    conversation = await Conversation.objects.acreate(owner=staff, model=chat_model)
    elsewhere = await sync_to_async(client_for)(staff)
    on_elsewhere = await socket_of(elsewhere, conversation)
    here = await sync_to_async(client_for)(staff)
    assert await sync_to_async(change)(here, "/admin/password_change/") == 302
    error = await on_elsewhere.until_type("error", timeout=5)
    assert error["code"] == "access_revoked", error
