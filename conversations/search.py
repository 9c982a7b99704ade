"""Full-text search (PostgreSQL) over the titles and message text a user may see."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from html import escape

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db.models import Count, F, QuerySet, Value, Window
from django.db.models.functions import Replace, RowNumber

from conversations import access
from conversations.models import Conversation, Message, User

CONFIG = "english"
# Sentinels ts_headline puts around matches; the snippet is escaped, then they become <mark>.
START, STOP = "\x02", "\x03"
MESSAGE_VECTOR = SearchVector("content", config=CONFIG)
TITLE_VECTOR = SearchVector("title", config=CONFIG)


@dataclass(frozen=True)
class Hit:
    conversation_id: str
    conversation_title: str
    owner: str
    message_id: str | None
    snippet_html: str
    rank: float
    #: The conversation's matches not shown (its title, its other messages).
    other_matches: int = 0


# Markdown's marks, which a snippet shows as plain text: code fences (with their language),
# headings, quotes and list markers at the start of a line, bold, italics, strikethrough and
# code spans, and links (their text is kept).
_FENCE = re.compile(r"(`{3,}|~{3,})[\w+#.-]*")
_LINE_MARKS = re.compile(r"(?m)^[ \t]*(#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d+[.)][ \t]+)")
_INLINE_MARKS = re.compile(r"\*\*|__|~~|`|(?<![\w*])\*(?=\S)|(?<=\S)\*(?![\w*])")
_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\s]*\)")


def plain_text(markdown: str) -> str:
    """``markdown`` as a line of plain text: marks out, whitespace collapsed."""
    text = _FENCE.sub(" ", markdown)
    text = _LINE_MARKS.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _INLINE_MARKS.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def _snippet(raw: str) -> str:
    return escape(plain_text(raw)).replace(START, "<mark>").replace(STOP, "</mark>")


def _scope(user: User, scope: str) -> QuerySet[Conversation]:
    if scope == "mine":
        return access.own_conversations(user)
    if scope == "team":
        return access.team_conversations(user)
    return access.visible_conversations(user)


def search(user: User, text: str, scope: str = "all", limit: int = 30) -> list[Hit]:
    """Ranked hits, best first, one per conversation: its best match (a message, or its title)
    with a highlighted snippet, and how many other matches it holds. A conversation was listed
    once per matching message and again for its title."""
    text = (text or "").strip()[:200]
    if not text:
        return []
    query = SearchQuery(text, config=CONFIG, search_type="websearch")
    conversations = _scope(user, scope)

    def headline(field: str) -> SearchHeadline:
        # The sentinels mark the matches: any the text itself holds are taken out first.
        plain = Replace(Replace(F(field), Value(START), Value("")), Value(STOP), Value(""))
        return SearchHeadline(
            plain,
            query,
            config=CONFIG,
            start_sel=START,
            stop_sel=STOP,
            max_words=30,
            min_words=10,
            max_fragments=2,
        )

    # Each conversation's best matching message, and how many match in it. No snippet here:
    # the window runs over every match, and a headline is costly; only the shown ones get one.
    best = list(
        Message.objects.annotate(vector=MESSAGE_VECTOR)
        .filter(vector=query, conversation__in=conversations.values("pk"))
        .annotate(rank=SearchRank(F("vector"), query))
        .annotate(
            place=Window(
                RowNumber(), partition_by=F("conversation_id"), order_by=[F("rank").desc(), F("pk")]
            ),
            matches=Window(Count("pk"), partition_by=F("conversation_id")),
        )
        .filter(place=1)
        .select_related("conversation__owner")
        .order_by("-rank", "pk")[:limit]
    )
    snippets = dict(
        Message.objects.filter(pk__in=[m.pk for m in best])
        .annotate(snippet=headline("content"))
        .values_list("pk", "snippet")
    )
    titles = (
        conversations.annotate(vector=TITLE_VECTOR)
        .filter(vector=query)
        .annotate(
            rank=SearchRank(F("vector"), query),
            snippet=headline("title"),
        )
        .select_related("owner")
        .order_by("-rank")[:limit]
    )
    hits: dict[str, Hit] = {}
    for m in best:
        conversation_id = str(m.conversation_id)
        hits[conversation_id] = Hit(
            conversation_id,
            m.conversation.title or "New chat",
            m.conversation.owner.username,
            str(m.pk),
            _snippet(snippets.get(m.pk, "")),
            float(m.rank),
            other_matches=m.matches - 1,
        )
    for c in titles:
        conversation_id = str(c.pk)
        title = Hit(
            conversation_id,
            c.title,
            c.owner.username,
            None,
            _snippet(c.snippet),
            float(c.rank) + 0.5,
        )
        message = hits.get(conversation_id)
        if message is None:
            hits[conversation_id] = title
        elif title.rank > message.rank:  # its title shown, its messages counted
            hits[conversation_id] = replace(title, other_matches=message.other_matches + 1)
        else:
            hits[conversation_id] = replace(message, other_matches=message.other_matches + 1)
    return sorted(hits.values(), key=lambda hit: -hit.rank)[:limit]
