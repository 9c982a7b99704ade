"""Alice shares with her team; Bob (same team) sees, follows, forks; Charlie (no team in common)
sees nothing of it, on any path."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from conversations import sharing
from conversations.errors import PermissionDenied
from conversations.models import (
    AuditEntry,
    Conversation,
    Message,
    ModelConfig,
    ShareLink,
    ShareLinkOpen,
    Team,
    User,
)
from tests.support import client_for

pytestmark = pytest.mark.django_db
SECRET = "The quarterly okapi migration plan"


@pytest.fixture
def shared(alice: User, bob: User, charlie: User, chat_model: ModelConfig) -> Conversation:
    ops = Team.objects.create(name="ops")
    ops.members.set([alice, bob])
    Team.objects.create(name="sales").members.set([charlie])
    conversation = Conversation.objects.create(owner=alice, model=chat_model, title="Okapi plan")
    question = Message.objects.create(
        conversation=conversation, role="user", author=alice, content=f"{SECRET}: what next?"
    )
    Message.objects.create(
        conversation=conversation,
        parent=question,
        role="assistant",
        model=chat_model,
        content="Move the okapis in spring.",
    )
    sharing.set_visibility(alice, conversation.id, "team", ops.id)
    return conversation


def test_bob_lists_and_opens_what_alice_shared_with_their_team(
    bob: User, shared: Conversation
) -> None:
    client = client_for(bob)
    team_page = client.get("/team/").content.decode()
    assert "Okapi plan" in team_page and "Alice" in team_page
    assert client.get(f"/c/{shared.id}/").status_code == 200
    assert client.get(f"/c/{shared.id}/export.md").status_code == 200
    hits = client.get("/search/", {"q": "okapi migration"}).content.decode()
    assert "<mark>" in hits and "Okapi plan" in hits


def test_charlie_gets_a_404_everywhere_and_search_never_shows_alices_text(
    charlie: User, shared: Conversation
) -> None:
    client = client_for(charlie)
    for url in [
        f"/c/{shared.id}/",
        f"/c/{shared.id}/export.md",
        f"/c/{shared.id}/export.json",
        f"/c/{shared.id}/sharing/",
    ]:
        assert client.get(url).status_code == 404, url
    assert client.post(f"/c/{shared.id}/fork/").status_code == 404
    assert client.get(f"/s/{'x' * 43}/").status_code == 404
    assert "Okapi plan" not in client.get("/team/").content.decode()
    for scope in ("all", "team", "mine"):
        page = client.get("/search/", {"q": "okapi", "scope": scope}).content.decode()
        assert "okapi" not in page.lower().replace('value="okapi"', ""), scope


def test_a_viewer_cannot_post_in_a_shared_conversation(bob: User, shared: Conversation) -> None:
    from conversations import actions

    with pytest.raises(PermissionDenied):
        actions.send_message(bob, shared.id, client_id="b1", content="hi")
    reply = shared.messages.get(role="assistant")
    with pytest.raises(PermissionDenied):
        actions.regenerate_reply(bob, shared.id, reply_id=reply.id, client_id="b2")
    with pytest.raises(PermissionDenied):
        actions.cancel_target(bob, shared.id, reply.id)
    with pytest.raises(PermissionDenied):
        actions.edit_message(
            bob,
            shared.id,
            message_id=shared.messages.get(role="user").id,
            content="x",
            client_id="b3",
        )


def test_bob_forks_into_his_own_private_conversation(bob: User, shared: Conversation) -> None:
    response = client_for(bob).post(f"/c/{shared.id}/fork/")
    assert response.status_code == 302
    fork = Conversation.objects.get(owner=bob)
    assert (
        fork.visibility == "private"
        and fork.forked_from is not None
        and fork.forked_from.conversation_id == shared.id
    )
    assert [m.content for m in fork.messages.order_by("created_at")] == [
        f"{SECRET}: what next?",
        "Move the okapis in spring.",
    ]


def test_a_conversation_with_the_longest_title_forks(bob: User, shared: Conversation) -> None:
    """A title may be 200 characters (what a rename keeps); its fork's " (fork)" suffix must
    not push it past the column."""
    Conversation.objects.filter(pk=shared.id).update(title="t" * 200)
    response = client_for(bob).post(f"/c/{shared.id}/fork/")
    assert response.status_code == 302
    fork = Conversation.objects.get(owner=bob)
    assert len(fork.title) <= 200 and fork.title.endswith(" (fork)")


def test_a_link_holder_continues_the_shared_transcript_in_their_own_chats(
    alice: User, charlie: User, shared: Conversation
) -> None:
    """Charlie (no team in common) has only the link: its page offers "Continue in my chats",
    and the button works for him while the link lives."""
    Conversation.objects.filter(pk=shared.id).update(system_prompt="Internal: zoo budget rules")
    link, token = sharing.create_share_link(alice, shared.id)
    client = client_for(charlie)
    page = client.get(f"/s/{token}/").content.decode()
    assert "Continue in my chats" in page and f'name="link" value="{token}"' in page
    assert client.post(f"/c/{shared.id}/fork/").status_code == 404  # the link is needed
    response = client.post(f"/c/{shared.id}/fork/", {"link": token})
    assert response.status_code == 302
    fork = Conversation.objects.get(owner=charlie)
    assert fork.messages.count() == 2 and fork.visibility == "private"
    assert fork.system_prompt == ""  # only what the link shows
    # The page and "Continue in my chats" are one visit.
    assert ShareLinkOpen.objects.filter(link=link, user=charlie).count() == 1
    # The link shows the newest branch: a message of another is not his to copy.
    older = Message.objects.create(
        conversation=shared,
        parent=shared.messages.get(role="user"),
        role="assistant",
        model=shared.model,
        content="An older version.",
    )
    Message.objects.filter(pk=older.pk).update(created_at=timezone.now() - timedelta(days=1))
    off_branch = {"link": token, "message_id": str(older.pk)}
    assert client.post(f"/c/{shared.id}/fork/", off_branch).status_code == 404
    assert Conversation.objects.filter(owner=charlie).count() == 1
    sharing.revoke_share_link(alice, link.pk)
    assert client.post(f"/c/{shared.id}/fork/", {"link": token}).status_code == 404


def test_an_account_reopening_a_link_is_one_visit_until_a_while_has_passed(
    alice: User, charlie: User, shared: Conversation
) -> None:
    """Reloading a share link's page (here 30 times) stores one opening, not one a reload:
    the owner's "opened N times" counts visits, and a signed-in account cannot grow the log
    without bound. Opened again after ``sharing.REOPENING_IS_THE_SAME_VISIT``, it is a new
    visit; another account's opening is its own."""
    link, token = sharing.create_share_link(alice, shared.id)
    client = client_for(charlie)
    for _ in range(30):
        assert client.get(f"/s/{token}/").status_code == 200
    assert ShareLinkOpen.objects.filter(link=link).count() == 1
    ShareLinkOpen.objects.filter(link=link).update(
        at=timezone.now() - sharing.REOPENING_IS_THE_SAME_VISIT - timedelta(seconds=1)
    )
    assert client.get(f"/s/{token}/").status_code == 200
    assert client_for(alice).get(f"/s/{token}/").status_code == 200
    assert ShareLinkOpen.objects.filter(link=link, user=charlie).count() == 2
    assert ShareLinkOpen.objects.filter(link=link, user=alice).count() == 1
    page = client_for(alice).get(f"/c/{shared.id}/sharing/").content.decode()
    assert "opened 3 times" in page


def test_collaborators_post_as_themselves(
    alice: User, bob: User, charlie: User, shared: Conversation
) -> None:
    from conversations import actions

    with pytest.raises(Exception, match="Not in a team of yours"):
        sharing.set_collaborators(alice, shared.id, ["charlie"])
    sharing.set_collaborators(alice, shared.id, ["bob"])
    turn = actions.send_message(bob, shared.id, client_id="b1", content="I would wait for summer.")
    user_message = turn.new_messages[0]
    assert user_message.author == bob
    assert turn.reply.usage_records.get().user == bob  # charged to the collaborator


def test_share_links_are_logged_revocable_and_expire(
    alice: User, charlie: User, shared: Conversation, staff: User
) -> None:
    link, token = sharing.create_share_link(alice, shared.id, expires_in_days=7)
    assert token not in link.hashed and len(token) >= 40
    charlie_client = client_for(charlie)
    page = charlie_client.get(f"/s/{token}/")
    assert page.status_code == 200 and "Move the okapis in spring." in page.content.decode()
    assert ShareLinkOpen.objects.get().user == charlie
    anonymous = Client().get(f"/s/{token}/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    # The admin allows public links on the admin's "Sharing settings" page (audited).
    admin = client_for(staff)
    page = admin.get("/admin/conversations/sharingsettings/", follow=True)
    assert page.status_code == 200 and "allow_public_links" in page.content.decode()
    change_url = page.redirect_chain[-1][0]
    assert admin.post(change_url, {"allow_public_links": "on"}).status_code == 302
    entry = AuditEntry.objects.get(target_type="sharingsettings")
    assert entry.actor == staff
    assert (entry.before or {}).get("allow_public_links") is False
    assert (entry.after or {}).get("allow_public_links") is True
    assert Client().get(f"/s/{token}/").status_code == 200
    assert ShareLinkOpen.objects.filter(user__isnull=True).count() == 1
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert charlie_client.get(f"/s/{token}/").status_code == 404
    _, second = sharing.create_share_link(alice, shared.id)
    assert charlie_client.get(f"/s/{second}/").status_code == 200
    client_for(alice).post(
        f"/links/{ShareLink.objects.get(hashed__isnull=False, expires_at__isnull=True).pk}/revoke/"
    )
    assert charlie_client.get(f"/s/{second}/").status_code == 404


def test_public_links_stay_off_until_the_admin_allows_them(
    alice: User, bob: User, shared: Conversation
) -> None:
    _, token = sharing.create_share_link(alice, shared.id)
    assert Client().get(f"/s/{token}/").status_code == 302
    # Only staff reach the setting.
    assert client_for(bob).get("/admin/conversations/sharingsettings/").status_code == 302
    assert not sharing.public_links_allowed()


def test_unsharing_removes_it_from_bobs_list_and_is_audited(
    alice: User, bob: User, shared: Conversation
) -> None:
    response = client_for(alice).post(
        f"/c/{shared.id}/sharing/visibility/", {"visibility": "private"}
    )
    assert response.status_code == 302
    client = client_for(bob)
    assert "Okapi plan" not in client.get("/team/").content.decode()
    assert client.get(f"/c/{shared.id}/").status_code == 404
    assert [
        e.action for e in AuditEntry.objects.filter(target_type="conversation").order_by("at")
    ] == ["share", "unshare"]


def test_only_the_owner_changes_sharing(bob: User, shared: Conversation) -> None:
    assert (
        client_for(bob)
        .post(f"/c/{shared.id}/sharing/visibility/", {"visibility": "private"})
        .status_code
        == 403
    )
    shared.refresh_from_db()
    assert shared.visibility == "team"


def test_without_teams_a_shared_conversation_is_visible_to_everyone(
    alice: User, charlie: User, chat_model: ModelConfig
) -> None:
    conversation = Conversation.objects.create(owner=alice, model=chat_model, title="For all")
    sharing.set_visibility(alice, conversation.id, "team")
    assert client_for(charlie).get(f"/c/{conversation.id}/").status_code == 200
    assert client_for(charlie).get(f"/c/{uuid.uuid4()}/").status_code == 404
