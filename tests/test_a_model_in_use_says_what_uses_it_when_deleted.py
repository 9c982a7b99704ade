"""Deleting a model that conversations, messages or the ledger name (they protect it) shows
what uses it, counted, and how to retire it instead (untick "Enabled"); nothing is deleted.

Before, once a model had been called the page said only that the account "doesn't have
permission to delete" usage records (true of every account: the ledger is read-only), never
what protected the model nor what to do, and it read every ledger row of the model to say so."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.models import (
    AuditEntry,
    Conversation,
    Message,
    ModelConfig,
    UsageRecord,
    User,
)
from tests.support import client_for

pytestmark = pytest.mark.django_db

LIST = "/admin/conversations/modelconfig/"


def delete_page(model: ModelConfig) -> str:
    return f"{LIST}{model.pk}/delete/"


@pytest.fixture
def used(alice: User, alice_conversation: Conversation, chat_model: ModelConfig) -> ModelConfig:
    Message.objects.create(
        conversation=alice_conversation, role="assistant", model=chat_model, content="hi"
    )
    UsageRecord.objects.bulk_create(
        UsageRecord(user=alice, model=chat_model, purpose="chat", state="settled")
        for _ in range(1200)
    )
    return chat_model


USED_SAYS = (
    "deepseek-chat: used by 1 conversation, 1 message, 1,200 calls in the usage ledger. They "
    "are kept for good, so the model cannot be deleted: untick “Enabled” to retire it"
)


def test_the_page_says_what_uses_the_model_and_nothing_is_deleted(
    staff: User, used: ModelConfig
) -> None:
    client = client_for(staff)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(delete_page(used)).content.decode()
    assert USED_SAYS in page
    assert "have permission to delete" not in page
    # Counted, not read row by row.
    ledger_reads = [
        q["sql"] for q in queries.captured_queries if 'FROM "conversations_usagerecord"' in q["sql"]
    ]
    assert ledger_reads and all("COUNT(" in sql for sql in ledger_reads), ledger_reads

    response = client.post(delete_page(used), {"post": "yes"})
    assert response.status_code == 200 and USED_SAYS in response.content.decode()
    assert ModelConfig.objects.filter(pk=used.pk).exists()
    assert UsageRecord.objects.filter(model=used).count() == 1200
    assert not AuditEntry.objects.exists()


def test_deleting_several_at_once_names_those_in_use(
    staff: User, used: ModelConfig, reasoner_model: ModelConfig
) -> None:
    unused = ModelConfig.objects.create(name="never-used", display_name="N", upstream_model="n")
    client = client_for(staff)
    chosen = [str(used.pk), str(reasoner_model.pk), str(unused.pk)]
    response = client.post(
        LIST, {"action": "delete_selected", "_selected_action": chosen, "post": "yes"}
    )
    page = response.content.decode()
    assert response.status_code == 200 and USED_SAYS in page
    assert "reasoner" not in page.split("protected related objects", 1)[1].split("</ul>")[0]
    assert ModelConfig.objects.filter(pk__in=chosen).count() == 3  # none deleted


def test_a_model_never_used_is_deleted_as_before(staff: User) -> None:
    unused = ModelConfig.objects.create(name="never-used", display_name="N", upstream_model="n")
    client = client_for(staff)
    assert "Are you sure" in client.get(delete_page(unused)).content.decode()
    assert client.post(delete_page(unused), {"post": "yes"}).status_code == 302
    assert not ModelConfig.objects.filter(pk=unused.pk).exists()
    assert AuditEntry.objects.get(action="delete").target_repr == "never-used"
