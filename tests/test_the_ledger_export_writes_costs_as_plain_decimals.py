"""The ledger's export writes each cost as a plain decimal, as a reader or a spreadsheet reads
it: a call that cost nothing was "0E-8" and one of a hundred-millionth of a dollar "1E-8"
(Python's text of such a Decimal), every refused or failed call among them."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from conversations.models import ModelConfig, UsageRecord, User
from tests.support import client_for, downloaded

pytestmark = pytest.mark.django_db


def test_costs_are_written_without_an_exponent(
    staff: User, alice: User, chat_model: ModelConfig
) -> None:
    for cost in ("0", "0.00000001", "0.0000005", "12345.678"):
        UsageRecord.objects.create(
            user=alice, model=chat_model, purpose="chat", state="settled", cost=Decimal(cost)
        )

    export = downloaded(client_for(staff).get("/admin/usage/export.csv"))

    costs = [row["cost_usd"] for row in csv.DictReader(io.StringIO(export))]
    assert costs == ["0.00000000", "0.00000001", "0.00000050", "12345.67800000"]
