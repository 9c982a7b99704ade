"""A share link's page, and the messages its script reads again, take a fixed number of queries
however long the conversation: each message's author and model were read one at a time (300
queries for 150 turns, ~0.4 s of the page's second)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from conversations import sharing
from conversations.models import Conversation, Message, ModelConfig, User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def add_turns(conversation: Conversation, model: ModelConfig, turns: int) -> None:
    parent = conversation.messages.order_by("-created_at").first()
    done = conversation.messages.filter(role=Message.Role.USER).count()
    for n in range(done, done + turns):
        question = Message.objects.create(
            conversation=conversation,
            parent=parent,
            role=Message.Role.USER,
            author=conversation.owner,
            content=f"question {n}",
            status=Message.Status.COMPLETE,
        )
        parent = Message.objects.create(
            conversation=conversation,
            parent=question,
            role=Message.Role.ASSISTANT,
            model=model,
            content=f"answer {n}",
            status=Message.Status.COMPLETE,
            finish_reason="stop",
        )


def queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200
    return len(captured)


def test_the_page_and_its_messages_take_the_same_queries_for_3_or_60_turns(
    alice: User, bob: User, alice_conversation: Conversation, chat_model: ModelConfig
) -> None:
    _, token = sharing.create_share_link(alice, alice_conversation.id)
    viewer = client_for(bob)
    add_turns(alice_conversation, chat_model, 3)
    viewer.get(f"/s/{token}/")  # sessions and caches warmed up
    short = (queries(viewer, f"/s/{token}/"), queries(viewer, f"/s/{token}/messages.json"))
    add_turns(alice_conversation, chat_model, 57)
    long = (queries(viewer, f"/s/{token}/"), queries(viewer, f"/s/{token}/messages.json"))
    assert long == short
    page = viewer.get(f"/s/{token}/").content.decode()
    assert "answer 59" in page and "question 0" in page
    # Each question names its author, each answer its model.
    assert page.count('<h2 class="author">Alice</h2>') == 60
    assert page.count(f'<h2 class="author">{chat_model.display_name}</h2>') == 60
