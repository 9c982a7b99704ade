"""A share link's page carries its transcript once: the server-rendered articles are what a browser
without JavaScript shows and what the page's script reads (the markdown source as each article's
text). The page held it twice, rendered and again in its JSON data: ~0.5 MB for 150 turns."""

from __future__ import annotations

import pytest

from conversations import sharing
from conversations.models import Conversation, Message, User
from tests.support import client_for, shared_messages

pytestmark = pytest.mark.django_db

SENTENCE = "Roll the release out to the canary pool before the others, then watch its error rate. "
# Markdown as a model writes it, with what the page must escape or keep exactly: markup, an
# ampersand, quotes, a carriage return (which the HTML parser would turn into a line feed).
ANSWER = (
    "## Rolling out\r\n\r\n"
    + SENTENCE * 40
    + "\n\n```python\nif version < 2 and \"canary\" in pools:\n    print('a & b')\n```\n\n"
    + "</div><script>alert(1)</script> <img src=x onerror=alert(2)> &amp; &lt;\n"
)


def page(viewer: User, token: str) -> str:
    response = client_for(viewer).get(f"/s/{token}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_transcript_is_in_the_page_once(
    alice: User, bob: User, alice_conversation: Conversation
) -> None:
    question = Message.objects.create(
        conversation=alice_conversation,
        role=Message.Role.USER,
        author=alice,
        content='How do I roll out "v2" <safely>?',
    )
    _, token = sharing.create_share_link(alice, alice_conversation.id)
    before = page(bob, token)
    Message.objects.create(
        conversation=alice_conversation,
        parent=question,
        role=Message.Role.ASSISTANT,
        model=alice_conversation.model,
        content=ANSWER,
        status=Message.Status.COMPLETE,
        finish_reason="stop",
    )
    html = page(bob, token)

    assert html.count(SENTENCE * 40) == 1
    # The page grew by the reply's text and its article, not by twice the text.
    grown = len(html.encode()) - len(before.encode())
    assert grown < 1.2 * len(ANSWER.encode()), (grown, len(ANSWER.encode()))

    # Escaped for the page, and read back by the script exactly as written.
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert [m["content"] for m in shared_messages(html)] == [
        'How do I roll out "v2" <safely>?',
        ANSWER,
    ]
