"""Pages for sharing: the owner's sharing settings, forks, share links, the team's history and
search. Thin: parse, call one action (which authorizes), answer."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, Concatenate, ParamSpec
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from chatsite.addresses import request_address
from conversations import access, link_limits, search, sharing, shown_once, signin
from conversations.errors import ChatError, Conflict, RateLimited
from conversations.frames import link_message
from conversations.models import Conversation, ShareLink, Team

PAGE_SIZE = 30

P = ParamSpec("P")


def _user(request: HttpRequest) -> Any:
    return request.user


def _conversation_or_404(request: HttpRequest, conversation_id: Any) -> Conversation:
    try:
        return access.access_conversation(_user(request), conversation_id)
    except Conversation.DoesNotExist:
        raise Http404("No such conversation") from None


@login_required
def sharing_page(
    request: HttpRequest,
    conversation_id: Any,
    *,
    error: ChatError | None = None,
    new_link: str = "",
    collaborators_typed: str | None = None,
) -> HttpResponse:
    """The conversation's sharing page; after a refused form, its ``error`` (said next to the
    collaborators' field, with what was typed there kept, when it is theirs)."""
    conversation = _conversation_or_404(request, conversation_id)
    if conversation.owner_id != request.user.pk:
        raise Http404("No such conversation")
    links = (
        ShareLink.objects.filter(conversation=conversation)
        .annotate(open_count=Count("opens"))
        .order_by("-created_at")
    )
    teams = list(Team.objects.filter(members=request.user))
    context = {
        "conversation": conversation,
        "teams": teams,
        # Shared with a team its owner has left since: its members still see it, and the list
        # of the owner's teams cannot show it (it showed the first of them, as if chosen).
        "team_left": conversation.team
        if conversation.visibility == Conversation.Visibility.TEAM
        and conversation.team is not None
        and conversation.team not in teams
        else None,
        "any_teams": Team.objects.exists(),
        "collaborators": ", ".join(conversation.collaborators.values_list("username", flat=True))
        if collaborators_typed is None
        else collaborators_typed,
        "collaborators_error": error.message
        if error is not None and error.param == "collaborators"
        else "",
        "collaborators_away": sharing.collaborators_away(conversation),
        "links": [(link, link.open_count) for link in links],
        "error": error,
        "new_link": new_link,
        "form_id": shown_once.new_form_id(),
        # Which links have expired, said as on the keys page (an expired link opens no more).
        "now": timezone.now(),
    }
    status = error.status if error else 200
    return shown_once.not_stored(render(request, "sharing/settings.html", context, status=status))


def _refusal(
    request: HttpRequest, conversation_id: Any, error: ChatError, **kept: Any
) -> HttpResponse:
    if error.status == 404:
        raise Http404("No such conversation")
    if error.status == 403:
        return HttpResponse(error.message, status=403, content_type="text/plain")
    return sharing_page(request, conversation_id, error=error, **kept)


@login_required
@require_POST
def change_visibility(request: HttpRequest, conversation_id: Any) -> HttpResponse:
    try:
        sharing.set_visibility(
            _user(request),
            conversation_id,
            request.POST.get("visibility", ""),
            request.POST.get("team"),
        )
    except ChatError as error:
        return _refusal(request, conversation_id, error)
    return redirect("conversation-sharing", conversation_id=conversation_id)


@login_required
@require_POST
def change_collaborators(request: HttpRequest, conversation_id: Any) -> HttpResponse:
    typed = request.POST.get("collaborators", "")
    names = [name.strip() for name in typed.split(",") if name.strip()]
    try:
        sharing.set_collaborators(_user(request), conversation_id, names)
    except ChatError as error:
        return _refusal(request, conversation_id, error, collaborators_typed=typed)
    return redirect("conversation-sharing", conversation_id=conversation_id)


# A new link is shown once, in the answer to the form that creates it (``shown_once``).
LINK_FORMS = "share_link"


@login_required
@require_POST
def create_link(request: HttpRequest, conversation_id: Any) -> HttpResponse:
    if shown_once.already_sent(request, LINK_FORMS):
        already = Conflict(
            "This form was already sent, and its link created: it is listed below (it was "
            "shown once). If you did not copy it, revoke it and create another."
        )
        return _refusal(request, conversation_id, already)
    try:
        _, token = sharing.create_share_link(
            _user(request), conversation_id, request.POST.get("expires_in_days")
        )
    except ChatError as error:
        return _refusal(request, conversation_id, error)
    shown_once.mark_sent(request, LINK_FORMS)
    return sharing_page(
        request,
        conversation_id,
        new_link=request.build_absolute_uri(reverse("shared-link", args=[token])),
    )


@login_required
@require_POST
def revoke_link(request: HttpRequest, link_id: int) -> HttpResponse:
    try:
        link = sharing.revoke_share_link(_user(request), link_id)
    except ChatError:
        raise Http404 from None
    return redirect("conversation-sharing", conversation_id=link.conversation_id)


@login_required
@require_POST
def fork(request: HttpRequest, conversation_id: Any) -> HttpResponse:
    try:
        new = sharing.fork_conversation(
            _user(request),
            conversation_id,
            request.POST.get("message_id") or None,
            link_token=request.POST.get("link") or None,
        )
    except ChatError:
        raise Http404 from None
    return redirect("conversation-detail", conversation_id=new.id)


def limited_for_anonymous(
    view: Callable[Concatenate[HttpRequest, P], HttpResponse],
) -> Callable[Concatenate[HttpRequest, P], HttpResponse]:
    """For every view of a share link (under ``/s/``): a visitor not signed in is counted
    against their address's requests a minute (``link_limits``) before the token is looked up,
    and past them answered 429 with Retry-After and one line saying so (no transcript, no
    token)."""

    @wraps(view)
    def limited(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            try:
                link_limits.count_request(request_address(request))
            except RateLimited as error:
                response = HttpResponse(
                    error.message, status=error.status, content_type="text/plain; charset=utf-8"
                )
                response.headers["Retry-After"] = str(error.extra["retry_after"])
                return response
        return view(request, *args, **kwargs)

    return limited


@limited_for_anonymous
def shared_link(request: HttpRequest, token: str) -> HttpResponse:
    """Read-only, as the conversation is now, and then live (``static/js/shared.js`` follows
    the link's socket). A revoked or expired link is a 404."""
    if not request.user.is_authenticated and not sharing.public_links_allowed():
        try:
            access.access_shared_link(token)
        except ShareLink.DoesNotExist:
            raise Http404 from None
        return redirect_to_login(request.get_full_path())
    try:
        link = sharing.open_share_link(token, _user(request))
    except ShareLink.DoesNotExist:
        raise Http404("No such link") from None
    conversation = link.conversation
    # The script reads the messages from the articles (templates/sharing/shared.html): the
    # page carries the transcript once, not again in its data.
    page_data = {
        "conversation_id": str(conversation.id),
        "title": str(conversation),
        "signed_in": request.user.is_authenticated,
        # Where an anonymous viewer signs in and comes back, if public links are switched off.
        "sign_in_url": redirect_to_login(request.get_full_path()).url,
        "socket_path": f"/ws/conversations/{conversation.id}/?{urlencode({'link': token})}",
        "messages_url": reverse("shared-link-messages", args=[token]),
    }
    response = render(
        request,
        "sharing/shared.html",
        # The token goes back with "Continue in my chats": a link is all some viewers have.
        {
            "conversation": conversation,
            "messages": [link_message(m) for m in sharing.link_transcript(conversation)],
            "token": token,
            "page_data": page_data,
        },
    )
    # The token is in the page's path: its requests for scripts, styles and the socket would
    # name the whole address in their Referer (and a proxy's access log writes it down).
    response.headers["Referrer-Policy"] = signin.LINK_REFERRER_POLICY
    return response


@limited_for_anonymous
def shared_link_messages(request: HttpRequest, token: str) -> JsonResponse:
    """What the link's page shows, read again by its script (after a reconnect, or when a
    message arrives under one the link does not show): not another opening of the link."""
    try:
        if not access.may_open_links(_user(request)):
            raise ShareLink.DoesNotExist
        conversation = access.access_shared_link(token).conversation
    except ShareLink.DoesNotExist:
        raise Http404("No such link") from None
    return JsonResponse(
        {
            "title": str(conversation),
            "messages": [link_message(m) for m in sharing.link_transcript(conversation)],
        }
    )


@login_required
def team_history(request: HttpRequest) -> HttpResponse:
    conversations = (
        access.team_conversations(_user(request)).select_related("owner").order_by("-updated_at")
    )
    query = request.GET.get("q", "").strip()
    if query:
        conversations = conversations.filter(title__icontains=query)
    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "sharing/team.html", {"page": page, "q": query})


@login_required
def search_page(request: HttpRequest) -> HttpResponse:
    scope = request.GET.get("scope") or "all"
    scope = scope if scope in ("mine", "team") else "all"
    query = request.GET.get("q", "")
    hits = search.search(_user(request), query, scope)
    return render(request, "sharing/search.html", {"hits": hits, "q": query, "scope": scope})
