"""A missing page, a refused one, an expired form and a server error each answer with the
site's own page: a heading that says what happened, a way back, and nothing inline that the
Content-Security-Policy would block (Django's built-in pages carry a <style> element)."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client, RequestFactory
from django.views.defaults import server_error

from conversations.models import Conversation, ModelConfig, User
from tests.support import client_for


def assert_site_page(html: str, heading: str) -> None:
    assert f"<h1>{heading}</h1>" in html
    assert "Back to your chats" in html
    assert "/static/css/app" in html  # the site's stylesheet
    assert "<style" not in html and not re.search(r"\sstyle=", html)


@pytest.mark.django_db
def test_a_missing_page_and_another_users_conversation_are_the_same_404(
    alice: User, bob: User, chat_model: ModelConfig
) -> None:
    theirs = Conversation.objects.create(owner=bob, title="Bob's", model=chat_model)
    client = client_for(alice)
    for url in ["/no-such-page/", f"/c/{uuid.uuid4()}/", f"/c/{theirs.pk}/"]:
        response = client.get(url)
        assert response.status_code == 404, url
        html = response.content.decode()
        assert_site_page(html, "Page not found")
        assert "Bob's" not in html
        assert 'class="username">alice<' in html  # the signed-in page, with its menu


@pytest.mark.django_db
def test_a_form_sent_with_an_expired_token_says_nothing_changed(alice: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post("/accounts/logout/")
    assert response.status_code == 403
    html = response.content.decode()
    assert_site_page(html, "The form expired")
    assert "Nothing was changed" in html
    assert client.get("/").status_code == 200  # still signed in


def test_a_server_error_page_renders_without_a_request_context() -> None:
    request = RequestFactory().get("/c/")
    response = server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert_site_page(html, "Something went wrong")
    assert "has logged it" in html
