"""A collaborator list refused (a name that is no user) is said next to its field, and the field
keeps what was typed, so the owner fixes one name instead of typing the list again. Before, the
error was at the top of the page and the field showed the saved list."""

from __future__ import annotations

import re

import pytest

from conversations.models import Conversation, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def test_the_field_keeps_the_typed_names_and_says_what_is_wrong(
    alice: User, bob: User, alice_conversation: Conversation
) -> None:
    response = client_for(alice).post(
        f"/c/{alice_conversation.id}/sharing/collaborators/",
        {"collaborators": "bob, nosuchuser"},
    )
    assert response.status_code == 400
    page = response.content.decode()
    field = re.search(r'<input id="collaborators"[^>]*>', page)
    assert field is not None
    assert 'value="bob, nosuchuser"' in field.group(0)
    assert 'aria-invalid="true"' in field.group(0)
    assert 'aria-describedby="collaborators-error"' in field.group(0)
    assert re.search(
        r'<p class="field-error" id="collaborators-error" role="alert">No such user: nosuchuser\.</p>',
        page,
    )
    assert page.count("No such user") == 1  # not also at the top
    assert not alice_conversation.collaborators.exists()


def test_a_saved_list_shows_as_saved(
    alice: User, bob: User, alice_conversation: Conversation
) -> None:
    client = client_for(alice)
    client.post(f"/c/{alice_conversation.id}/sharing/collaborators/", {"collaborators": " bob "})
    page = client.get(f"/c/{alice_conversation.id}/sharing/").content.decode()
    assert 'value="bob"' in page and "collaborators-error" not in page
