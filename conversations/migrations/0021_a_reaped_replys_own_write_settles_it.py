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
    r record;
    v_prompt integer := p_prompt;
    v_hit integer := p_cache_hit;
    v_miss integer := p_cache_miss;
    v_reasoning integer := p_reasoning;
    v_price_hit numeric;
    v_price_miss numeric;
    v_price_out numeric;
BEGIN
    SELECT u.id, u.user_id, u.model_id, u.prompt_tokens, u.total_tokens, u.day_start,
           u.month_start, u.created_at
      INTO r FROM conversations_usagerecord u
     WHERE u.id = p_record_id AND u.state = 'settled' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF NOT p_has_usage THEN
        v_prompt := r.prompt_tokens;  -- as admitted (settling keeps it)
        v_hit := 0;
        v_miss := r.prompt_tokens;
        v_reasoning := 0;
    END IF;
    SELECT p.input_cache_hit, p.input_cache_miss, p.output
      INTO v_price_hit, v_price_miss, v_price_out
      FROM conversations_modelprice p
     WHERE p.model_id = r.model_id
       AND p.effective_from <= (r.created_at AT TIME ZONE p_time_zone)::date
     ORDER BY p.effective_from DESC LIMIT 1;
    IF NOT FOUND THEN
        SELECT m.price_input_cache_hit, m.price_input_cache_miss, m.price_output
          INTO v_price_hit, v_price_miss, v_price_out
          FROM conversations_modelconfig m WHERE m.id = r.model_id;
    END IF;
    UPDATE conversations_usagerecord u
       SET outcome = p_outcome,
           prompt_tokens = v_prompt, cache_hit_tokens = v_hit, cache_miss_tokens = v_miss,
           completion_tokens = p_completion, reasoning_tokens = v_reasoning,
           total_tokens = v_prompt + p_completion,
           cost = (v_hit * v_price_hit + v_miss * v_price_miss + p_completion * v_price_out)
                  * 0.000001,
           estimated = NOT p_has_usage
     WHERE u.id = r.id;
    -- The difference from what was settled, in the day and month the call was admitted in;
    -- the stream slot came back with the first settlement.
    UPDATE conversations_usageaccount c
       SET day_used = c.day_used + CASE WHEN c.day_start = r.day_start
                                        THEN v_prompt + p_completion - r.total_tokens
                                        ELSE 0 END,
           month_used = c.month_used + CASE WHEN c.month_start = r.month_start
                                            THEN v_prompt + p_completion - r.total_tokens
                                            ELSE 0 END
     WHERE c.user_id = r.user_id;
    RETURN true;
END
$$;
"""

RESETTLE_SIGNATURE = (
    "usage_resettle(bigint, text, boolean, integer, integer, integer, integer, integer, text)"
)


class Migration(migrations.Migration):
    dependencies = [("conversations", "0020_a_users_own_limit_can_be_unlimited")]

    operations = [
        migrations.RunSQL(RESETTLE, reverse_sql=f"DROP FUNCTION {RESETTLE_SIGNATURE}"),
    ]
