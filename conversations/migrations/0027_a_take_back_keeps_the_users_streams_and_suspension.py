"""A call the reaper settled while its task lived is taken back only as admission would take
it: within the user's running replies, and only while the account is active and not suspended.

``usage_take_back`` (0025) reserved the call's worst case again against the day and the month,
but retook its stream slot unconditionally, and never looked at the account: a slot the reaper
gave back, used meanwhile by a new reply or API call, left the user with one more stream than
``concurrent_streams`` allows once the reaped reply was taken back; an account suspended or
deactivated during the outage had its reply taken back and run to its end. Now the one
conditional update of the user's running totals also requires room for the stream slot (when
the call holds one), and the function answers false for an account that may not send
(``usage_limits``' ``is_active`` and ``suspended``, as ``usage_admit`` reads them): the row
stays as the reaper left it, and its task gives way (its call settled to what it used).
"""

from importlib import import_module

from django.db import migrations

before = import_module("conversations.migrations.0025_a_taken_back_call_holds_its_worst_case")

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
    -- Suspended or deactivated while the worker was cut off: admission would refuse the call.
    IF l.is_active IS NOT TRUE OR l.suspended THEN
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
    dependencies = [("conversations", "0026_the_audit_log_keeps_no_secrets_hashes")]

    operations = [migrations.RunSQL(TAKE_BACK, reverse_sql=before.TAKE_BACK)]
