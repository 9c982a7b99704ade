"""A reply's final write settles its call even when the call was settled already: by the
reaper, which gave up on a task that was still alive (its process cut off from the database
for longer than ``GENERATION_STALE_SECONDS``) and settled the call from an estimate of the
text it had checkpointed. The task's own write then brings the call to what it used — the
provider's counts, or the estimate of the whole text — and charges the difference
(``usage_resettle``). Counts set, not added: the same write applied again (a retry after its
answer was lost) changes nothing."""

from django.db import migrations

RESETTLE = """
CREATE FUNCTION usage_resettle(
    p_record_id bigint,
    p_outcome text,
    p_has_usage boolean,
    p_prompt integer,
    p_cache_hit integer,
    p_cache_miss integer,
    p_completion integer,
    p_reasoning integer,
    p_time_zone text
) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_held boolean;
BEGIN
    SELECT u.holds_stream INTO v_held FROM conversations_usagerecord u
     WHERE u.id = p_record_id AND u.state = 'settled' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- What the earlier settlement charged stands as the call's reservation, and the call is
    -- settled again by usage_settle (priced at its day's price, in the day and month it was
    -- admitted in): what is charged moves by the difference. The stream slot came back the
    -- first time; the row says again that the call held one.
    UPDATE conversations_usagerecord u
       SET state = 'reserved', reserved_tokens = u.total_tokens, holds_stream = false
     WHERE u.id = p_record_id;
    PERFORM usage_settle(p_record_id, p_outcome, p_has_usage, p_prompt, p_cache_hit,
                         p_cache_miss, p_completion, p_reasoning, p_time_zone);
    UPDATE conversations_usagerecord u SET holds_stream = v_held WHERE u.id = p_record_id;
    RETURN true;
END
$$;
"""

SETTLE_OWN = """
CREATE FUNCTION usage_settle_own(
    p_record_id bigint,
    p_outcome text,
    p_has_usage boolean,
    p_prompt integer,
    p_cache_hit integer,
    p_cache_miss integer,
    p_completion integer,
    p_reasoning integer,
    p_time_zone text
) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    -- The settlement a call's own process makes: of a reserved call, or again of a settled one.
    IF usage_settle(p_record_id, p_outcome, p_has_usage, p_prompt, p_cache_hit, p_cache_miss,
                    p_completion, p_reasoning, p_time_zone) THEN
        RETURN true;
    END IF;
    RETURN usage_resettle(p_record_id, p_outcome, p_has_usage, p_prompt, p_cache_hit,
                          p_cache_miss, p_completion, p_reasoning, p_time_zone);
END
$$;
"""

RESETTLE_SIGNATURE = "(bigint, text, boolean, integer, integer, integer, integer, integer, text)"


class Migration(migrations.Migration):
    dependencies = [("conversations", "0020_a_users_own_limit_can_be_unlimited")]

    operations = [
        migrations.RunSQL(
            RESETTLE, reverse_sql=f"DROP FUNCTION usage_resettle{RESETTLE_SIGNATURE}"
        ),
        migrations.RunSQL(
            SETTLE_OWN, reverse_sql=f"DROP FUNCTION usage_settle_own{RESETTLE_SIGNATURE}"
        ),
    ]
