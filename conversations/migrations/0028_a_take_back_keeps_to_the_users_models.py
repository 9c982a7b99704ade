"""A call the reaper settled while its task lived is taken back only while its model is still
enabled and allowed to the user, as admission would take it.

``usage_take_back`` (0027) refused an account that may no longer send, but not a model the
admin disabled, or took from the user's policy, during the outage: the reply was taken back and
ran to its end on a model the user may no longer use. Now the function answers false for it
too (``usage_limits``' ``model_enabled`` and ``model_allowed``, as ``usage_admit`` reads them):
the row stays as the reaper left it, and its task gives way (its call settled to what it used).
"""

from importlib import import_module

from django.db import migrations

before = import_module(
    "conversations.migrations.0027_a_take_back_keeps_the_users_streams_and_suspension"
)

TAKE_BACK = """
CREATE OR REPLACE FUNCTION usage_take_back(p_record_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    l record;
BEGIN
    -- Called for a reaped row a checkpoint would take back (locked by it). Volatile, it reads
    -- the ledger as committed now. True: the call is held (taken back now, or it was never
    -- the reaper's to settle); false: it may not run on (the account may not send now, or its
    -- worst case or its stream slot no longer fits), and nothing changed.
    SELECT u.user_id, u.model_id, u.holds_stream, u.total_tokens, u.day_start, u.month_start,
           greatest(u.worst_case_tokens, u.total_tokens) - u.total_tokens AS more
      INTO r FROM conversations_usagerecord u
     WHERE u.id = p_record_id AND u.state = 'settled' AND u.outcome = 'interrupted'
       FOR UPDATE;
    IF NOT FOUND THEN
        RETURN true;
    END IF;
    SELECT * INTO l FROM usage_limits(r.user_id, r.model_id);
    -- Suspended or deactivated while the worker was cut off, or its model disabled or taken
    -- from the user's policy: admission would refuse the call.
    IF l.is_active IS NOT TRUE OR l.suspended OR l.model_enabled IS NOT TRUE
       OR l.model_allowed IS NOT TRUE THEN
        RETURN false;
    END IF;
    -- What the reaper charged stays; the rest of the worst case is reserved again in the day
    -- and month the call was admitted in (a period already over keeps no counter), and the
    -- stream slot taken again, only if both fit there: one conditional update of the user's
    -- row, re-checked on its latest version, as usage_admit does, so concurrent admissions
    -- never push it past a limit (the slot the reaper gave back may be another call's now).
    UPDATE conversations_usageaccount c
       SET day_used = c.day_used + CASE WHEN c.day_start = r.day_start THEN r.more ELSE 0 END,
           month_used = c.month_used
                        + CASE WHEN c.month_start = r.month_start THEN r.more ELSE 0 END,
           streams = c.streams + r.holds_stream::integer
     WHERE c.user_id = r.user_id
       AND (l.tokens_per_day IS NULL OR c.day_start <> r.day_start
            OR c.day_used + r.more <= l.tokens_per_day)
       AND (l.tokens_per_month IS NULL OR c.month_start <> r.month_start
            OR c.month_used + r.more <= l.tokens_per_month)
       AND (l.concurrent_streams IS NULL OR NOT r.holds_stream
            OR c.streams + 1 <= l.concurrent_streams);
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


class Migration(migrations.Migration):
    dependencies = [("conversations", "0027_a_take_back_keeps_the_users_streams_and_suspension")]

    operations = [migrations.RunSQL(TAKE_BACK, reverse_sql=before.TAKE_BACK)]
