"""A reply the reaper gave up on while its task lived, and that the task's next checkpoint takes
back (``actions.CHECKPOINT_MANY_SQL``), holds its call again: the reaper settled the call (as
``interrupted``, from an estimate of the text checkpointed) and gave its stream slot back, so
while the task ran on the user could start one more reply than ``concurrent_streams`` allows.
Taken back, the call is ``reserved`` again, for what the reaper charged, and takes its stream
slot again; the settlement that ends it (the task's final write, a give-way, or the reaper
again) is then an ordinary one: it charges the difference and gives the slot back, once."""

from django.db import migrations

TAKE_BACK = """
CREATE FUNCTION usage_take_back(p_record_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    -- Called for every row a checkpoint writes: for all but a call the reaper settled, this
    -- finds nothing and changes nothing. Volatile, it reads the ledger as committed now (a
    -- reap that committed while the checkpoint waited for the reply's row is seen).
    UPDATE conversations_usagerecord u
       SET state = 'reserved', reserved_tokens = u.total_tokens, outcome = '',
           settled_at = NULL
     WHERE u.id = p_record_id AND u.state = 'settled' AND u.outcome = 'interrupted'
    RETURNING u.user_id, u.holds_stream INTO r;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE conversations_usageaccount c
       SET streams = c.streams + r.holds_stream::integer
     WHERE c.user_id = r.user_id;
    RETURN true;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("conversations", "0021_a_reaped_replys_own_write_settles_it")]

    operations = [
        migrations.RunSQL(TAKE_BACK, reverse_sql="DROP FUNCTION usage_take_back(bigint)"),
    ]
