"""A settlement without the provider's usage (an estimate) keeps the reasoning tokens it is
given (``quota.settlement_params``: the reasoning text of a thinking call stopped or cut off),
at most the completion, instead of counting none."""

import importlib

from django.db import migrations

BEFORE = importlib.import_module("conversations.migrations.0009_usage_account").SETTLE
ZEROED = """
        v_reasoning := 0;
"""
KEPT = """
        v_reasoning := LEAST(p_reasoning, p_completion);
"""
assert BEFORE.count(ZEROED) == 1
AFTER = BEFORE.replace(ZEROED, KEPT)


class Migration(migrations.Migration):
    dependencies = [("conversations", "0022_a_taken_back_reply_holds_its_call_again")]

    operations = [migrations.RunSQL(AFTER, reverse_sql=BEFORE)]
