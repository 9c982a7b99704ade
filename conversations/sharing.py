"""Sharing, as actions: visibility, collaborators, forks and share links. Each checks access,
writes in one transaction, audits the change, and tells live sockets after commit."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any, NamedTuple

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.signals import user_logged_out
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet, prefetch_related_objects
from django.db.models.signals import pre_delete
from django.dispatch import receiver
from django.utils import timezone

from conversations import access, audit
from conversations.actions import ACTIVE, path_to, reply_state
from conversations.errors import Conflict, InvalidParameter, NotFound, PermissionDenied
from conversations.frames import LINK_ROLES
from conversations.models import (
    Conversation,
    Message,
    ShareLink,
    ShareLinkOpen,
    Team,
    User,
    UserLimits,
    live,
)

logger = logging.getLogger("conversations.sharing")

#: Live (neither revoked nor expired) links one conversation may have: the owner's sharing page
#: lists them all, and there is no reason for more.
MAX_LIVE_LINKS = 50


def _owned(user: User, conversation_id: Any) -> Conversation:
    try:
        conversation = access.access_conversation(user, conversation_id)
    except Conversation.DoesNotExist:
        raise NotFound("No such conversation.") from None
    if conversation.owner_id != user.pk:
        raise PermissionDenied("Only the owner can change how a conversation is shared.")
    return conversation


def announce_access_change(*conversation_ids: uuid.UUID) -> None:
    """After commit: every socket on these conversations re-checks whether it may stay (who
    may see a conversation changed: its sharing, a link, a team's members, a user's account,
    a delete)."""
    _announce({"type": "conversation.access_changed"}, conversation_ids)


def announce_title(conversation_id: uuid.UUID, title: str) -> None:
    """After commit: the conversation's open sockets are sent its new title (a rename)."""
    _announce({"type": "conversation.updated", "title": title}, (conversation_id,))


def announce_settings(conversation_id: uuid.UUID, settings: Mapping[str, Any]) -> None:
    """After commit: the conversation's open sockets (never a share link's: the system prompt
    and parameters are not what a link shows) are sent its saved settings, so that their
    pages' copies, and an open Settings dialog, follow."""
    _announce({"type": "conversation.settings", **settings}, (conversation_id,))


def announce_listed(conversation: Conversation) -> None:
    """After commit: the owner's open tabs (their own conversation sockets, never a share
    link's) list the conversation, new, renamed or restored, under its title (their sidebars)."""
    from conversations.generation import account_group, listed_event

    _to_account_after_commit(
        account_group(conversation.owner_id), listed_event(conversation.pk, str(conversation))
    )


#: The most conversations one ``conversation.deleted`` frame names: a delete of thousands (the
#: admin's "delete selected") is told in several.
DELETED_PER_FRAME = 500


def announce_deleted(owner_id: int, *conversation_ids: uuid.UUID) -> None:
    """After commit: the owner's open tabs (their own sockets, never a share link's) unlist
    these conversations of theirs, and one showing any of them says it was deleted."""
    ids = list(conversation_ids)
    transaction.on_commit(lambda: _tell_deleted({owner_id: ids}))


def announce_listing_change(before: Conversation | None, after: Conversation) -> None:
    """After commit: the owners' tabs list the conversation as it is now (``after``), having
    listed it as it was (``before``; None: it is new) — unlisted where it no longer shows (it
    was deleted, or given to another owner), listed where it now shows or under a new title."""
    was_listed = before is not None and before.deleted_at is None
    listed = after.deleted_at is None
    moved = before is not None and before.owner_id != after.owner_id
    if before is not None and was_listed and (moved or not listed):
        announce_deleted(before.owner_id, before.pk)
    if listed and (not was_listed or moved or str(before) != str(after)):
        announce_listed(after)


class SharedListing(NamedTuple):
    """How a conversation is listed for the accounts it is shared with (their "Shared with
    you" lists, the team page, search), and who those accounts are (``access.viewers``)."""

    title: str
    owner: str
    viewers: frozenset[int]


SharedListings = dict[uuid.UUID, SharedListing]


def shared_listings(conversation_ids: Iterable[uuid.UUID]) -> SharedListings:
    """The live conversations of ``conversation_ids`` as their viewers besides the owner list
    them now (none for a private conversation without collaborators)."""
    ids = list(conversation_ids)
    viewers = access.viewers(ids)
    named = Conversation.objects.filter(pk__in=list(viewers)).select_related("owner")
    return {
        c.pk: SharedListing(str(c), str(c.owner), viewers[c.pk])
        for c in named.only(
            "id", "title", "owner__username", "owner__first_name", "owner__last_name"
        )
    }


def announce_shared_listing(
    conversation_ids: Iterable[uuid.UUID], before: SharedListings | None = None
) -> None:
    """After commit: every account a conversation is shared with (besides its owner) lists it
    as it is now, in the tabs it has open: ``shared.listed`` to each account that sees it (new
    to it, or under a new title), ``shared.unlisted`` to each that saw it (``before``, taken
    before the change) and no longer does — made private, given to another team, deleted.
    ``before`` None: only the title may have changed (a rename), and whoever sees it is told.

    Cheap by design: a private conversation (most of them) costs one statement and no send; a
    shared one one send per account that sees it or saw it, only when its listing changes, to
    that account's own group, so no other account ever hears of it — not even one that left
    the team a moment ago."""
    ids = list(dict.fromkeys(conversation_ids))
    if not ids or get_channel_layer() is None:
        return

    def tell() -> None:
        after = shared_listings(ids)
        unlisted: dict[int, list[uuid.UUID]] = {}
        listed: list[tuple[int, uuid.UUID, SharedListing]] = []
        for pk in ids:
            was, now = (before or {}).get(pk), after.get(pk)
            now_viewers = now.viewers if now is not None else frozenset()
            if was is not None:
                for user_id in was.viewers - now_viewers:
                    unlisted.setdefault(user_id, []).append(pk)
            if now is None:
                continue
            for user_id in now_viewers:
                if (
                    before is None
                    or was is None
                    or user_id not in was.viewers
                    or was[:2] != now[:2]
                ):
                    listed.append((user_id, pk, now))
        _tell_shared(unlisted, listed)

    transaction.on_commit(tell)


#: The most frames one send to an account's group carries (``account.batch``): the last team
#: deleted lists every conversation shared with no team to every account, in as few sends.
FRAMES_PER_SEND = 500

#: The most sends to the channel layer in flight at once (each account's group its own).
SENDS_AT_ONCE = 100


def _tell_shared(
    unlisted: dict[int, list[uuid.UUID]], listed: list[tuple[int, uuid.UUID, SharedListing]]
) -> None:
    """Each account is told what it unlists and lists in one send to its group (a batch of
    frames past the first: ``account.batch``), the accounts side by side, not one frame
    after another: a team's delete may give thousands of conversations to every account."""
    from conversations.generation import (
        account_batch_event,
        account_group,
        shared_listed_event,
        unlisted_event,
    )

    layer = get_channel_layer()
    if layer is None or not (unlisted or listed):
        return
    told: dict[int, list[dict[str, Any]]] = {}
    for user_id, ids in unlisted.items():
        for start in range(0, len(ids), DELETED_PER_FRAME):
            event = unlisted_event(ids[start : start + DELETED_PER_FRAME])
            told.setdefault(user_id, []).append(event)
    for user_id, pk, listing in listed:
        told.setdefault(user_id, []).append(shared_listed_event(pk, listing.title, listing.owner))
    sends: list[tuple[str, dict[str, Any]]] = []
    for user_id, events in told.items():
        for start in range(0, len(events), FRAMES_PER_SEND):
            batch = events[start : start + FRAMES_PER_SEND]
            sends.append(
                (
                    account_group(user_id),
                    batch[0] if len(batch) == 1 else account_batch_event(batch),
                )
            )
    _send_side_by_side(layer, sends)


def _send_side_by_side(layer: Any, sends: list[tuple[str, dict[str, Any]]]) -> None:
    """Each event to its group, :data:`SENDS_AT_ONCE` at a time, in one trip to the event
    loop. A send that fails (the layer away) is logged, and the others still go: the
    change has committed, and a tab that missed it catches up when it reconnects."""

    async def send() -> None:
        for start in range(0, len(sends), SENDS_AT_ONCE):
            chunk = sends[start : start + SENDS_AT_ONCE]
            results = await asyncio.gather(
                *(layer.group_send(group, event) for group, event in chunk),
                return_exceptions=True,
            )
            for (group, event), result in zip(chunk, results, strict=True):
                if isinstance(result, BaseException):
                    logger.warning(
                        "telling %s of %s failed (%s)", group, event["type"], type(result).__name__
                    )

    if sends:
        async_to_sync(send)()


def conversations_shared_with_no_team() -> list[uuid.UUID]:
    """The live conversations shared with no team in particular: with every active user while
    the deployment has no team at all, with no one but their collaborators once it has one
    (``access._visibility``; those in a team with the owner). The first team created takes them from everyone; the last team
    deleted gives them, and its own (their team set to null), to everyone."""
    shared = Conversation.objects.alive().filter(
        visibility=Conversation.Visibility.TEAM, team__isnull=True
    )
    return list(shared.values_list("pk", flat=True))


def conversations_with_collaborators(members: Iterable[int] | None = None) -> list[uuid.UUID]:
    """The live conversations with collaborators — of them, those whose owner or a collaborator
    is one of ``members`` (None: any): who collaborates depends on who shares a team with the
    owner (``access._collaborating``), so a team's members edited, or the first team created or
    the last deleted, may give or take them."""
    named = Conversation.collaborators.through.objects.all()
    if members is not None:
        ids = list(members)
        named = named.filter(Q(user_id__in=ids) | Q(conversation__owner_id__in=ids))
    with_collaborators = Conversation.objects.alive().filter(pk__in=named.values("conversation_id"))
    return list(with_collaborators.values_list("pk", flat=True))


def announce_account_change(user_id: int, conversation_ids: Iterable[uuid.UUID]) -> None:
    """After commit: every open socket of the account checks that its session still signs it
    in (signed out, a new password, the account deactivated or deleted), and leaves if not:
    those on the conversations it reached (``conversation_ids``), and its socket on no
    conversation (the welcome page's), which only its group reaches."""
    from conversations.generation import account_group

    announce_access_change(*conversation_ids)
    _to_account_after_commit(account_group(user_id), {"type": "account.access_changed"})


def announce_limits_change(user_id: int, *, suspended: bool) -> None:
    """After commit: the account's open tabs (its own sockets, never a share link's) hear that
    its limits changed (suspended or unsuspended, a limit raised or lowered), and offer to send,
    or stop offering, and say what is left, without a reload (``account.updated``). Sending is
    refused or admitted by ``quota`` whatever a tab shows."""
    from conversations.generation import account_group, account_updated_event

    _to_account_after_commit(account_group(user_id), account_updated_event(suspended=suspended))


def announce_limits_change_of(user_ids: Iterable[int]) -> None:
    """:func:`announce_limits_change` for each of ``user_ids`` (a policy that governs them
    changed, or their groups did), each told whether it is suspended."""
    ids = set(user_ids)
    suspended = set(
        UserLimits.objects.filter(user_id__in=ids, suspended=True).values_list("user_id", flat=True)
    )
    for user_id in sorted(ids):
        announce_limits_change(user_id, suspended=user_id in suspended)


def _to_account_after_commit(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    transaction.on_commit(lambda: async_to_sync(layer.group_send)(group, event))


def _tell_deleted(deleted: dict[int, list[uuid.UUID]]) -> None:
    """Each owner's group is told which of its conversations are deleted (owner id → ids)."""
    from conversations.generation import account_group, deleted_event

    layer = get_channel_layer()
    if layer is None:
        return
    sends = [
        (account_group(owner_id), deleted_event(ids[start : start + DELETED_PER_FRAME]))
        for owner_id, ids in deleted.items()
        for start in range(0, len(ids), DELETED_PER_FRAME)
    ]
    _send_side_by_side(layer, sends)


# Kept on a delete's origin: what it deleted so far, owner id → conversation ids.
_DELETED_BY = "_conversations_deleted_by_owner"


@receiver(pre_delete, sender=Conversation)
def announce_a_conversation_deleted_for_good(
    sender: Any, instance: Conversation, origin: Any = None, **kwargs: Any
) -> None:
    """However a conversation is deleted for good — on its admin page, by "delete selected",
    by any code — its owner's tabs unlist it (``announce_deleted``), once the delete commits.

    A delete that takes many conversations is told once, by owner: Django's collector signals
    each conversation before it deletes any (inside the delete's transaction), and each adds
    itself to what its delete (``origin``) tells after commit. Not an account's delete, which
    takes its conversations: its sockets leave with it (``announce_account_change``).

    Those it was shared with unlist it too, the account's delete included: who saw what is
    read once per delete, before anything is deleted (``_shared_before``)."""
    holder = instance if origin is None else origin
    shared: SharedListings | None = getattr(holder, _SHARED_BEFORE, None)
    if shared is None:
        shared = shared_listings(_shared_before(instance, origin))
        setattr(holder, _SHARED_BEFORE, shared)
        gone = shared
        transaction.on_commit(
            lambda: _tell_shared(
                _by_viewer({pk: listing.viewers for pk, listing in gone.items()}), []
            )
        )
    if isinstance(origin, User) or (isinstance(origin, QuerySet) and origin.model is User):
        return
    deleted: dict[int, list[uuid.UUID]] | None = getattr(holder, _DELETED_BY, None)
    if deleted is None:
        deleted = {}
        setattr(holder, _DELETED_BY, deleted)
        told = deleted
        transaction.on_commit(lambda: _tell_deleted(told))
    deleted.setdefault(instance.owner_id, []).append(instance.pk)


# Kept on a delete's origin: how the conversations it deletes were listed for others.
_SHARED_BEFORE = "_conversations_shared_before"


def _shared_before(instance: Conversation, origin: Any) -> QuerySet[Conversation, uuid.UUID]:
    """The conversations a delete takes, as far as its origin tells (its queryset, an account
    or accounts), else the one conversation: read in one go, while they still are."""
    if isinstance(origin, QuerySet) and origin.model is Conversation:
        return origin.values_list("pk", flat=True)
    if isinstance(origin, User):
        return Conversation.objects.filter(owner=origin).values_list("pk", flat=True)
    if isinstance(origin, QuerySet) and origin.model is User:
        return Conversation.objects.filter(owner__in=origin.values("pk")).values_list(
            "pk", flat=True
        )
    return Conversation.objects.filter(pk=instance.pk).values_list("pk", flat=True)


def _by_viewer(viewers: dict[uuid.UUID, frozenset[int]]) -> dict[int, list[uuid.UUID]]:
    """Conversation → who saw it, turned into viewer → the conversations they saw."""
    seen: dict[int, list[uuid.UUID]] = {}
    for pk, users in viewers.items():
        for user_id in users:
            seen.setdefault(user_id, []).append(pk)
    return seen


def _announce(event: dict[str, Any], conversation_ids: Iterable[uuid.UUID]) -> None:
    from conversations.generation import group_name

    layer = get_channel_layer()
    conversation_ids = tuple(conversation_ids)
    if layer is None or not conversation_ids:
        return

    sends = [(group_name(conversation_id), dict(event)) for conversation_id in conversation_ids]
    transaction.on_commit(lambda: _send_side_by_side(layer, sends))


@receiver(user_logged_out)
def announce_sign_out(sender: Any, request: Any, user: User | None, **kwargs: Any) -> None:
    """Signed out: the account's open sockets re-check their session, and those of this
    session leave (4401), rather than go on posting and reading as the account."""
    if user is None:
        return
    # Django tells before it flushes the session: flushed first, so that the sockets find it
    # gone when they re-check (its own flush then has nothing left to do).
    request.session.flush()
    announce_account_change(user.pk, access.reachable_conversation_ids(user))


def announce_password_change(user: User) -> None:
    """A new password ends the account's other sessions (Django's rule): their open sockets
    re-check and leave (4401) at once, rather than go on posting and reading as the account
    (a password is changed to lock someone out). Called once the changing session is kept."""
    announce_account_change(user.pk, access.reachable_conversation_ids(user))


def _sharing_state(conversation: Conversation) -> dict[str, Any]:
    return {
        "visibility": conversation.visibility,
        "team": conversation.team_id,
        "collaborators": sorted(conversation.collaborators.values_list("pk", flat=True)),
    }


def set_visibility(
    user: User, conversation_id: Any, visibility: str, team_id: Any = None
) -> Conversation:
    """Private, or shared with one of the owner's teams (any team-less deployment: everyone).
    Made private, it loses its collaborators too: private is its owner's alone (collaborators
    named afterwards are the owner's new choice)."""
    with transaction.atomic():
        conversation = _owned(user, conversation_id)
        before = _sharing_state(conversation)
        listed_before = shared_listings([conversation.pk])
        if visibility == Conversation.Visibility.PRIVATE:
            conversation.visibility, conversation.team = Conversation.Visibility.PRIVATE, None
            conversation.collaborators.clear()
        elif visibility == Conversation.Visibility.TEAM:
            teams = Team.objects.filter(members=user)
            if Team.objects.exists():
                try:
                    team = teams.get(pk=int(team_id))
                except (TypeError, ValueError, Team.DoesNotExist):
                    raise InvalidParameter("Choose one of your teams.", param="team") from None
            else:
                team = None
            conversation.visibility, conversation.team = Conversation.Visibility.TEAM, team
        else:
            raise InvalidParameter('visibility must be "private" or "team".', param="visibility")
        conversation.save(update_fields=["visibility", "team", "updated_at"])
        after = _sharing_state(conversation)
        action = "share" if visibility == Conversation.Visibility.TEAM else "unshare"
        audit.record(user, action, conversation, before, after)
        announce_access_change(conversation.id)
        announce_shared_listing([conversation.pk], listed_before)
    return conversation


def set_collaborators(user: User, conversation_id: Any, usernames: list[str]) -> list[User]:
    """Named teammates who may post (each message keeps its author; their replies are charged
    to them, under their limits). Only those newly named must be in a team of the owner's: one
    named before and since out of the owner's teams (who neither sees nor posts meanwhile,
    ``access._collaborating``) may stay named, so that the page's form saves as it shows them."""
    with transaction.atomic():
        conversation = _owned(user, conversation_id)
        before = _sharing_state(conversation)
        listed_before = shared_listings([conversation.pk])
        people = list(
            User.objects.filter(username__in=usernames, is_active=True).exclude(pk=user.pk)
        )
        missing = set(usernames) - {p.username for p in people} - {user.username}
        if Team.objects.exists():
            # Where there are teams an owner learns nothing of the accounts outside theirs: a
            # name no one has and a stranger's are refused alike.
            mine = set(access.team_ids(user))
            named = set(conversation.collaborators.values_list("pk", flat=True))
            strangers = {
                p.username
                for p in people
                if p.pk not in named and not mine & set(access.team_ids(p))
            }
            if missing | strangers:
                raise InvalidParameter(
                    f"Not in a team of yours: {', '.join(sorted(missing | strangers))}.",
                    param="collaborators",
                )
        if missing:
            raise InvalidParameter(
                f"No such user: {', '.join(sorted(missing))}.", param="collaborators"
            )
        conversation.collaborators.set(people)
        audit.record(user, "collaborators", conversation, before, _sharing_state(conversation))
        announce_access_change(conversation.id)
        announce_shared_listing([conversation.pk], listed_before)
    return people


def collaborators_away(conversation: Conversation) -> list[str]:
    """The collaborators named on ``conversation`` who are in none of its owner's teams now:
    they neither see nor post until they are again (none in a deployment without teams)."""
    if not Team.objects.exists():
        return []
    mine = Team.objects.filter(members=conversation.owner_id).values("id")
    return list(
        conversation.collaborators.exclude(teams__in=mine)
        .order_by("username")
        .values_list("username", flat=True)
    )


FORK_SUFFIX = " (fork)"


def _fork_title(title: str) -> str:
    """The source's title marked as a fork, cut so that it still fits the column."""
    if not title:
        return ""
    room = (Conversation._meta.get_field("title").max_length or 0) - len(FORK_SUFFIX)
    return title[:room].rstrip() + FORK_SUFFIX


def fork_conversation(
    user: User, conversation_id: Any, message_id: Any = None, link_token: str | None = None
) -> Conversation:
    """Copy the conversation up to ``message_id`` (default: its newest message) into a new
    private conversation of ``user``'s, linked to its origin. Only finished messages are copied.
    ``user`` may see it, or holds a live share link to it (``link_token``: "Continue in my
    chats" on the shared page)."""
    through_link = False
    try:
        source = access.access_conversation(user, conversation_id)
    except Conversation.DoesNotExist:
        link = _live_link_to(conversation_id, link_token, user)
        if link is None:
            raise NotFound("No such conversation.") from None
        source, through_link = link.conversation, True
    with transaction.atomic():
        leaf: Message | None
        if message_id:
            try:
                leaf = source.messages.get(pk=message_id)
            except (Message.DoesNotExist, ValueError, TypeError, ValidationError):
                raise NotFound("No such message in this conversation.") from None
        else:
            leaf = source.messages.order_by("-created_at").first()
        if through_link and message_id and leaf not in shared_branch(source):
            # A link shows one branch: a message of another is not the link holder's to copy.
            raise NotFound("No such message in this conversation.")
        # Through a link, only what the link shows: the messages' text, no system prompt,
        # settings, reasoning or tool calls of the owner's.
        fork = Conversation.objects.create(
            owner=user,
            title=_fork_title(source.title),
            model=source.model,
            system_prompt="" if through_link else source.system_prompt,
            params={} if through_link else source.params,
            forked_from=leaf,
        )
        parent: Message | None = None
        for message in path_to(source, leaf.pk if leaf else None):
            if message.status in (Message.Status.PENDING, Message.Status.STREAMING):
                break
            if through_link and message.role not in LINK_ROLES:
                continue
            parent = Message.objects.create(
                conversation=fork,
                parent=parent,
                role=message.role,
                author=message.author,
                model=message.model,
                content=message.content,
                reasoning="" if through_link else message.reasoning,
                tool_calls=None if through_link else message.tool_calls,
                tool_call_id="" if through_link else message.tool_call_id,
                status=message.status,
                finish_reason=message.finish_reason,
                usage=None if through_link else message.usage,
            )
        announce_listed(fork)
    return fork


def shared_branch(conversation: Conversation) -> list[Message]:
    """What a share link shows: the branch down to the newest message, oldest first."""
    leaf = conversation.messages.order_by("-created_at").first()
    return path_to(conversation, leaf.pk if leaf else None)


def link_transcript(conversation: Conversation) -> list[Message]:
    """What the shared page lists: the shared branch's user and assistant messages (a reply
    that only called a tool has no text to show), with their authors and models (each named
    on the page: read one message at a time, they were two queries a turn)."""
    messages = [
        m
        for m in shared_branch(conversation)
        if m.role in LINK_ROLES and (m.content or m.status in ACTIVE)
    ]
    prefetch_related_objects(messages, "author", "model")
    return messages


def shared_reply_state(
    user: User, conversation_id: Any, reply_id: Any, link_token: str | None
) -> Message:
    """:func:`actions.reply_state` for a socket that sees the conversation through a link: a
    reply the link shows (on :func:`shared_branch`), or one being written now (whose frames
    reach the viewer live anyway); NotFound for any other."""
    reply = reply_state(user, conversation_id, reply_id, link_token)
    if reply.status in ACTIVE or reply in shared_branch(reply.conversation):
        return reply
    raise NotFound("No such message in this conversation.", param="reply_id")


def _live_link_to(conversation_id: Any, token: str | None, user: User) -> ShareLink | None:
    """The live link ``token`` to that conversation, its use logged as an opening; else None."""
    if not token:
        return None
    try:
        link = open_share_link(token, user)
    except ShareLink.DoesNotExist:
        return None
    return link if str(link.conversation_id) == str(conversation_id) else None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_share_link(
    user: User, conversation_id: Any, expires_in_days: Any = None
) -> tuple[ShareLink, str]:
    """A read-only link; the token is returned once and stored hashed."""
    expires_at = None
    if expires_in_days not in (None, ""):
        try:
            days = int(expires_in_days)
        except (TypeError, ValueError):
            raise InvalidParameter(
                "Expiry must be a number of days.", param="expires_in_days"
            ) from None
        if not 1 <= days <= 365:
            raise InvalidParameter(
                "Expiry must be between 1 and 365 days.", param="expires_in_days"
            )
        expires_at = timezone.now() + timedelta(days=days)
    with transaction.atomic():
        conversation = _owned(user, conversation_id)
        # Counted with the conversation's row locked: two creations at once cannot both
        # take the last place.
        Conversation.objects.select_for_update().filter(pk=conversation.pk).exists()
        if live(ShareLink.objects.filter(conversation=conversation)).count() >= MAX_LIVE_LINKS:
            raise Conflict(
                f"A conversation can have at most {MAX_LIVE_LINKS} live share links: revoke "
                "one you no longer need first."
            )
        token = secrets.token_urlsafe(32)
        link = ShareLink.objects.create(
            conversation=conversation, created_by=user, hashed=_hash(token), expires_at=expires_at
        )
        audit.record(user, "link_create", link, None, audit.snapshot(link))
    return link, token


def revoke_share_link(user: User, link_id: Any) -> ShareLink:
    with transaction.atomic():
        try:
            link = ShareLink.objects.select_related("conversation").get(
                pk=int(link_id), conversation__owner=user
            )
        except (TypeError, ValueError, ShareLink.DoesNotExist):
            raise NotFound("No such link.") from None
        before = audit.snapshot(link)
        if link.revoked_at is None:
            link.revoked_at = timezone.now()
            link.save(update_fields=["revoked_at"])
            audit.record(user, "link_revoke", link, before, audit.snapshot(link))
            announce_access_change(link.conversation_id)
    return link


# An account opening a link again within this long (a reload, "Continue in my chats", a page
# left open and reopened) is the same visit: it is not stored again.
REOPENING_IS_THE_SAME_VISIT = timedelta(minutes=10)


def open_share_link(token: str, user: User | None) -> ShareLink:
    """The link's conversation as it is now; its opening is logged: by whom (an account, at
    most once per :data:`REOPENING_IS_THE_SAME_VISIT`), or anonymous (visitors not signed in
    are rate-limited instead)."""
    link = access.access_shared_link(token)
    viewer = user if user is not None and user.is_authenticated else None
    if (
        viewer is None
        or not ShareLinkOpen.objects.filter(
            link=link, user=viewer, at__gt=timezone.now() - REOPENING_IS_THE_SAME_VISIT
        ).exists()
    ):
        ShareLinkOpen.objects.create(link=link, user=viewer)
    return link


def public_links_allowed() -> bool:
    """Whether the admin lets share links open without signing in (the rule is access's)."""
    return access.public_links_allowed()


def conversations_with_live_links() -> list[uuid.UUID]:
    """The conversations a live share link leads to: those a change of the sharing settings
    may concern."""
    links = live(ShareLink.objects.filter(conversation__deleted_at__isnull=True))
    return list(links.values_list("conversation_id", flat=True).distinct())
