"""A cell of the CSV exports whose text starts with a formula character once its leading
whitespace is gone gets the leading quote too: LibreOffice Calc, importing with "Trim spaces"
ticked, read `` =1+1`` as the formula ``=1+1`` (checked with LibreOffice 7.4's CSV import; OWASP's
CSV injection guidance quotes such cells). Full-width look-alikes (U+FF1D and the like) stayed text
there, and stay unquoted here, as does text with a formula character further in."""

from __future__ import annotations

import csv
import io

import pytest

from conversations.models import AuditEntry, ModelConfig, UsageRecord, User
from tests.support import client_for, downloaded

pytestmark = pytest.mark.django_db

QUOTED = [
    " =1+1",
    "   =WEBSERVICE(A2)",
    " +1+A1",
    " -1+A1",
    " @SUM(A1)",
    "\n=1+1",
    "\u3000=1+1",  # an ideographic space
    "=1+1",  # as before: quoted already
    "\t=1+1",
]
AS_THEY_ARE = [" plain text", "a=b", "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20SUM(A1)"]


def test_the_audit_export_quotes_formulas_behind_whitespace(staff: User) -> None:
    texts = QUOTED + AS_THEY_ARE
    entries = [
        AuditEntry.objects.create(
            actor_name="sam", action="change", target_type="policy", target_id="7", target_repr=t
        )
        for t in texts
    ]

    export = client_for(staff).post(
        "/admin/conversations/auditentry/",
        {"action": "export_csv", "_selected_action": [e.pk for e in entries]},
    )

    targets = {row["target"] for row in csv.DictReader(io.StringIO(downloaded(export)))}
    assert targets == {"'" + t for t in QUOTED} | set(AS_THEY_ARE)


def test_the_ledger_export_quotes_formulas_behind_whitespace(
    staff: User, chat_model: ModelConfig
) -> None:
    # A deleted account's row keeps the name it had, whatever made it (an import, a script).
    UsageRecord.objects.create(
        user=None, username=" =HYPERLINK(A1)", model=chat_model, purpose="chat", state="settled"
    )

    export = client_for(staff).get("/admin/usage/export.csv")

    (row,) = csv.DictReader(io.StringIO(downloaded(export)))
    assert row["user"] == "' =HYPERLINK(A1) (deleted)"
