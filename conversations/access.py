"""Authorization in one place: every path fetches user-owned rows through these helpers.

"Missing" and "not yours" look the same to the caller (both raise ``Conversation.DoesNotExist``,
which views turn into a 404).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from conversations import rows
from conversations.models import (
    Conversation,
    ModelConfig,
    ShareLink,
    SharingSettings,
    Team,
    User,
)


def team_ids(user: User) -> list[int]:
    return list(Team.objects.filter(members=user).values_list("id", flat=True))


def _teammates(user: Any, owner: Any) -> Q:
    """Whether ``user`` and ``owner`` (a user, or an ``OuterRef`` to one) share a team — or
    whether the deployment has no teams at all, where everyone is everyone's teammate."""
    shared_team = Team.objects.filter(members=user).filter(members=owner)
    return Q(~Exists(Team.objects.all())) | Q(Exists(shared_team))


def _collaborating(user: User) -> Q:
    """The conversations ``user`` is a collaborator of now: named by the owner, and still in a
    team with them. Naming one needs a team in common (``sharing.set_collaborators``); taken
    out of the team, the collaborator loses the conversation at once, as a team's member loses
    what is shared with it, and gets it back if put in a team with the owner again."""
    return Q(collaborators=user) & _teammates(user, OuterRef("owner_id"))


def _visibility(user: User) -> Q:
    """Who sees what: the owner; collaborators (:func:`_collaborating`); and, for a
    conversation shared with a team, that team's members — or every active user while the
    deployment has no teams at all (decided in the same query: no round trip of its own)."""
    members_of = Team.objects.filter(members=user).values("id")
    in_team = Q(team_id__in=members_of) | Q(~Exists(Team.objects.all()))
    return (
        Q(owner=user)
        | _collaborating(user)
        | (Q(visibility=Conversation.Visibility.TEAM) & in_team)
    )


def visible_conversations(user: User) -> QuerySet[Conversation]:
    """Every live conversation ``user`` may open (own, shared with one of their teams, or
    collaborated on)."""
    if not user.is_authenticated or not user.is_active:
        return Conversation.objects.none()
    visible = Conversation.objects.alive().filter(_visibility(user)).values("pk")
    return Conversation.objects.filter(pk__in=visible)


def viewers(conversation_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, frozenset[int]]:
    """For each live conversation of ``conversation_ids``, the active accounts besides its owner
    that may see it now: :func:`_visibility` read the other way (its collaborators still in a
    team with the owner; for one shared with a team, that team's members — or every active user while the deployment has no
    teams at all). A private conversation without collaborators has none: nothing about it is
    told to anyone but its owner. Three statements, however many conversations."""
    rows = list(
        Conversation.objects.alive()
        .filter(pk__in=list(conversation_ids))
        .values_list("pk", "owner_id", "visibility", "team_id")
    )
    seen: dict[uuid.UUID, set[int]] = {pk: set() for pk, *_ in rows}
    collaborations = (
        Conversation.collaborators.through.objects.filter(
            conversation_id__in=list(seen), user__is_active=True
        )
        .filter(_teammates(OuterRef("user_id"), OuterRef("conversation__owner_id")))
        .values_list("conversation_id", "user_id")
    )
    for conversation_id, user_id in collaborations:
        seen[conversation_id].add(user_id)
    shared = [(pk, team_id) for pk, _, visibility, team_id in rows if visibility == "team"]
    if shared:
        teams = {team_id for _, team_id in shared if team_id is not None}
        members: dict[int | None, set[int]] = {}
        if Team.objects.exists():
            for team_id, user_id in Team.members.through.objects.filter(
                team_id__in=teams, user__is_active=True
            ).values_list("team_id", "user_id"):
                members.setdefault(team_id, set()).add(user_id)
        else:
            members[None] = set(User.objects.filter(is_active=True).values_list("pk", flat=True))
        for pk, team_id in shared:
            seen[pk] |= members.get(team_id, set())
    return {pk: frozenset(seen[pk] - {owner_id}) for pk, owner_id, *_ in rows}


def reachable_conversation_ids(user: User) -> list[uuid.UUID]:
    """The live conversations ``user``'s account reaches by the visibility rule, whatever its
    state now (deactivated just now: those its open sockets may be on)."""
    reachable = Conversation.objects.alive().filter(_visibility(user))
    return list(reachable.values_list("pk", flat=True).distinct())


def own_conversations(user: User) -> QuerySet[Conversation]:
    """The user's listed conversations (the sidebar, search): not one with no message yet."""
    if not user.is_authenticated or not user.is_active:
        return Conversation.objects.none()
    return Conversation.objects.listed().filter(owner=user)


def team_conversations(user: User) -> QuerySet[Conversation]:
    """Conversations others share with ``user`` (the sidebar's "Team" section)."""
    return visible_conversations(user).exclude(owner=user)


def access_conversation(user: User, conversation_id: uuid.UUID | str) -> Conversation:
    """The conversation if ``user`` may see it; ``Conversation.DoesNotExist`` otherwise."""
    try:
        return visible_conversations(user).select_related("model", "owner").get(pk=conversation_id)
    except (ValueError, TypeError, ValidationError, Conversation.DoesNotExist):
        # A malformed id is as missing as an unknown one.
        raise Conversation.DoesNotExist from None


def can_post(user: User, conversation: Conversation) -> bool:
    """The owner and collaborators (:func:`_collaborating`) post; everyone else who can see it only reads."""
    if not user.is_authenticated or not user.is_active:
        return False
    return (
        conversation.owner_id == user.pk
        or Conversation.objects.filter(pk=conversation.pk).filter(_collaborating(user)).exists()
    )


def own_conversation(user: User, conversation_id: uuid.UUID | str) -> Conversation | None:
    """The live conversation if ``user`` owns it, with its model, by one fixed statement (most
    posts are to one's own conversations); None otherwise — including when it is only shared
    with them."""
    if not user.is_authenticated or not user.is_active:
        return None
    try:
        key = uuid.UUID(str(conversation_id))
    except ValueError:
        return None
    with rows.server_bound_cursor() as cursor:
        cursor.execute(_own_sql(), [key, user.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    conversation, model = rows.split(row, Conversation, ModelConfig)
    assert isinstance(conversation, Conversation) and isinstance(model, ModelConfig)
    conversation.model = model
    conversation.owner = user
    return conversation


@cache
def _own_sql() -> str:
    return (
        f"SELECT {rows.columns(Conversation, 'c')}, {rows.columns(ModelConfig, 'm')}"  # noqa: S608 - names from _meta
        " FROM conversations_conversation c JOIN conversations_modelconfig m ON m.id = c.model_id"
        " WHERE c.id = %s AND c.owner_id = %s AND c.deleted_at IS NULL"
    )


def access_conversation_for_posting(user: User, conversation_id: uuid.UUID | str) -> Conversation:
    """The conversation if ``user`` may post in it; NotFound if they cannot see it,
    PermissionDenied if they may only read it."""
    from conversations.errors import NotFound, PermissionDenied

    own = own_conversation(user, conversation_id)
    if own is not None:
        return own
    try:
        conversation = access_conversation(user, conversation_id)
    except Conversation.DoesNotExist:
        raise NotFound("No such conversation.") from None
    if not can_post(user, conversation):
        raise PermissionDenied(
            "This conversation is shared with you to read; fork it to continue it."
        )
    return conversation


def access_shared_link(token: str) -> ShareLink:
    """A live share link by its token; ``ShareLink.DoesNotExist`` when unknown, revoked or
    expired, or while its conversation's owner is deactivated (the admin who deactivates an
    account stops what it publishes; reactivated, its links open again)."""
    if not isinstance(token, str) or not 20 <= len(token) <= 100:
        raise ShareLink.DoesNotExist
    digest = hashlib.sha256(token.encode()).hexdigest()
    link = (
        ShareLink.objects.select_related("conversation__model", "conversation__owner")
        .filter(
            hashed=digest,
            revoked_at__isnull=True,
            conversation__deleted_at__isnull=True,
            conversation__owner__is_active=True,
        )
        .first()
    )
    if link is None or link_ended(link, timezone.now()):
        raise ShareLink.DoesNotExist
    return link


def link_ended(link: ShareLink, now: datetime) -> bool:
    """Whether the link was revoked or has expired by ``now``: for good."""
    return link.revoked_at is not None or (link.expires_at is not None and link.expires_at <= now)


def conversation_gone(conversation_id: uuid.UUID | str) -> bool:
    """Whether the conversation was deleted (or never was): what a socket that could see it is
    told when it no longer can, rather than "no longer shared"."""
    return not Conversation.objects.alive().filter(pk=conversation_id).exists()


def access_owned_conversation(user: User, conversation_id: uuid.UUID | str) -> Conversation:
    """The live conversation if ``user`` owns it (rename, settings, delete); else DoesNotExist."""
    conversation = access_conversation(user, conversation_id)
    if conversation.owner_id != user.pk:
        raise Conversation.DoesNotExist
    return conversation


def access_deleted_conversation(user: User, conversation_id: uuid.UUID | str) -> Conversation:
    """A conversation ``user`` owns and deleted (to undo the delete); else DoesNotExist."""
    if not user.is_authenticated or not user.is_active:
        raise Conversation.DoesNotExist
    try:
        return Conversation.objects.filter(owner=user, deleted_at__isnull=False).get(
            pk=conversation_id
        )
    except (ValueError, TypeError, ValidationError, Conversation.DoesNotExist):
        raise Conversation.DoesNotExist from None


def public_links_allowed() -> bool:
    """Whether the admin lets share links open without signing in (Sharing settings)."""
    return SharingSettings.objects.filter(pk=1, allow_public_links=True).exists()


def may_open_links(user: User) -> bool:
    """Share links open for a signed-in account; for anyone else (a deactivated account too)
    only while the admin allows public links."""
    return (user.is_authenticated and user.is_active) or public_links_allowed()


def link_needs_sign_in(
    user: User, conversation_id: uuid.UUID | str, link_token: str | None
) -> bool:
    """Whether ``link_token`` is a live link to the conversation that ``user`` may not follow
    only for not being signed in: anonymous, while the admin allows no public links. Telling
    them so reveals nothing new: the link's page itself sends them to sign in then (and is a
    404 for a link revoked or expired)."""
    if not link_token or may_open_links(user):
        return False
    try:
        link = access_shared_link(link_token)
    except ShareLink.DoesNotExist:
        return False
    return str(link.conversation_id) == str(conversation_id)


def viewing_link(
    user: User, conversation_id: uuid.UUID | str, link_token: str | None
) -> ShareLink | None:
    """The live share link ``link_token`` if it leads to the conversation and ``user`` may open
    links (with the conversation, its model and owner); None otherwise."""
    if not link_token or not may_open_links(user):
        return None
    try:
        link = access_shared_link(link_token)
    except ShareLink.DoesNotExist:
        return None
    return link if str(link.conversation_id) == str(conversation_id) else None


def may_view(user: User, conversation_id: uuid.UUID | str, link_token: str | None = None) -> bool:
    """Whether a socket may stay on a conversation: by visibility, or by a live share link."""
    try:
        access_conversation(user, conversation_id)
        return True
    except Conversation.DoesNotExist:
        pass
    return viewing_link(user, conversation_id, link_token) is not None
