"""A call the reaper settled while its task lived, and that the task's next checkpoint takes
back (``actions.CHECKPOINT_MANY_SQL``), holds its worst case again, or is not taken back.

``usage_take_back`` (0022) made it ``reserved`` again for what the reaper had charged (the
prompt estimate and the text checkpointed), not for the worst case it was admitted with (the
padded prompt estimate + ``max_tokens``); meanwhile other calls may have been admitted into
the room the reaper gave back. The reply then ran on, and its settlement charged past the
day's or the month's limit. Now the ledger row keeps the worst case it was admitted with
(``worst_case_tokens``, written by ``usage_admit``), and taking the call back reserves it
again — the difference from what the reaper charged — against what is left of the day and
the month the call was admitted in, in one conditional update of the user's running totals,
as admission does. If it does not fit, nothing changes: the function answers false, the
checkpoint leaves the row as the reaper left it (``interrupted``), and the task gives way.

Calls admitted before this migration keep 0 there: taken back, they hold what the reaper
charged, as before (those still reserved are given their reservation as their worst case).
"""

from importlib import import_module

from django.db import migrations, models

admit_before = import_module("conversations.migrations.0024_usage_counters_only_move_forward")
take_back_before = import_module(
    "conversations.migrations.0022_a_taken_back_reply_holds_its_call_again"
)

_COLUMNS = "month_start, holds_stream, created_at, settled_at)"
_VALUES = "a.day_start, a.month_start, v_holds_stream, p_now, NULL)"
assert admit_before.ADMIT.count(_COLUMNS) == 1 and admit_before.ADMIT.count(_VALUES) == 1
ADMIT = admit_before.ADMIT.replace(
    _COLUMNS, "month_start, holds_stream, created_at, settled_at, worst_case_tokens)"
).replace(_VALUES, "a.day_start, a.month_start, v_holds_stream, p_now, NULL, v_reserved)")

TAKE_BACK = """
CREATE OR REPLACE FUNCTION usage_take_back(p_record_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    l record;
BEGIN
    -- Called for a reaped row a checkpoint would take back (locked by it). Volatile, it reads
    -- the ledger as committed now. True: the call is held (taken back now, or it was never
    -- the reaper's to settle); false: its worst case no longer fits, and nothing changed.
    SELECT u.user_id, u.model_id, u.holds_stream, u.total_tokens, u.day_start, u.month_start,
           greatest(u.worst_case_tokens, u.total_tokens) - u.total_tokens AS more
      INTO r FROM conversations_usagerecord u
     WHERE u.id = p_record_id AND u.state = 'settled' AND u.outcome = 'interrupted'
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN true;
    END IF;
    SELECT * INTO l FROM usage_limits(r.user_id, r.model_id);
    -- What the reaper charged stays; the rest of the worst case is reserved again in the day
    -- and month the call was admitted in (a period already over keeps no counter), only if
    -- it fits there: one conditional update of the user's row, re-checked on its latest
    -- version, as usage_admit does, so concurrent admissions never push it past a limit.
    UPDATE conversations_usageaccount c
       SET day_used = c.day_used + CASE WHEN c.day_start = r.day_start THEN r.more ELSE 0 END,
           month_used = c.month_used
                        + CASE WHEN c.month_start = r.month_start THEN r.more ELSE 0 END,
           streams = c.streams + r.holds_stream::integer
     WHERE c.user_id = r.user_id
       AND (l.tokens_per_day IS NULL OR c.day_start <> r.day_start
            OR c.day_used + r.more <= l.tokens_per_day)
       AND (l.tokens_per_month IS NULL OR c.month_start <> r.month_start
            OR c.month_used + r.more <= l.tokens_per_month);
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE conversations_usagerecord u
       SET state = 'reserved', reserved_tokens = u.total_tokens + r.more, outcome = '',
           settled_at = NULL
     WHERE u.id = p_record_id;
    RETURN true;
END
$$;
"""

# Calls still reserved were admitted for what they hold.
WORST_CASE_OF_RESERVED = """
UPDATE conversations_usagerecord SET worst_case_tokens = reserved_tokens WHERE state = 'reserved'
"""


class Migration(migrations.Migration):
    dependencies = [("conversations", "0024_usage_counters_only_move_forward")]

    operations = [
        migrations.AddField(
            model_name="usagerecord",
            name="worst_case_tokens",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.RunSQL(WORST_CASE_OF_RESERVED, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(ADMIT, reverse_sql=admit_before.ADMIT),
        migrations.RunSQL(
            TAKE_BACK,
            reverse_sql=take_back_before.TAKE_BACK.replace(
                "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
            ),
        ),
    ]
