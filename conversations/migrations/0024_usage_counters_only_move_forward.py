"""Usage counters only move forward, and a title call is not counted as a request.

``usage_admit`` (as in 0012, same signature) took the user's day, month and minute counters
back to the period a call named whenever it differed from theirs. The periods come from the
calling worker's clock, read before the statement waits for the user's row: a call stamped
23:59:59.95 that commits after one stamped 00:00:00.05, or a worker whose clock is a second
behind another's, reset the new day's counter to the old day, and the new day then started
again from zero (every call admitted, far past the limit). Now a call of a period the counter
has left is counted in the counter's newer period, and its ledger row names that period, which
its settlement gives back to.

A title call (the app's own, after a reply) no longer counts against the user's requests per
minute: with a limit of 2, the title after a first reply refused the user's second message.
"""

from importlib import import_module

from django.db import migrations

previous = import_module("conversations.migrations.0012_title_calls_hold_no_stream")

ADMIT = r"""
CREATE OR REPLACE FUNCTION usage_admit(
    p_user_id bigint,
    p_model_id bigint,
    p_purpose text,
    p_prompt_tokens integer,
    p_prompt_reserve integer,
    p_max_tokens integer,
    p_conversation_id uuid,
    p_message_id uuid,
    p_api_key_id bigint,
    p_check_api_access boolean,
    p_now timestamptz,
    p_minute timestamptz,
    p_day timestamptz,
    p_month timestamptz
) RETURNS TABLE (
    outcome text, record_id bigint, max_tokens integer, reserved integer, cap bigint,
    used bigint, model_name text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    l record;
    a record;
    v_max integer;
    v_reserved integer;
    v_record bigint;
    -- A title is the app's own small call after a reply, not a reply the user runs nor a
    -- request the user sent: it is admitted, reserved and settled like any call, but holds no
    -- stream slot and does not count against the requests per minute.
    v_holds_stream boolean := p_purpose <> 'title';
    v_request integer := (p_purpose <> 'title')::integer;
BEGIN
    SELECT * INTO l FROM usage_limits(p_user_id, p_model_id);
    IF l.is_active IS NOT TRUE OR l.suspended THEN
        RETURN QUERY SELECT 'suspended', NULL::bigint, NULL::integer, NULL::integer,
                            NULL::bigint, NULL::bigint, l.model_name;
        RETURN;
    END IF;
    IF p_check_api_access AND l.api_access IS NOT TRUE THEN
        RETURN QUERY SELECT 'api_access', NULL::bigint, NULL::integer, NULL::integer,
                            NULL::bigint, NULL::bigint, l.model_name;
        RETURN;
    END IF;
    IF l.model_enabled IS NOT TRUE OR l.model_allowed IS NOT TRUE THEN
        RETURN QUERY SELECT 'model', NULL::bigint, NULL::integer, NULL::integer,
                            NULL::bigint, NULL::bigint, l.model_name;
        RETURN;
    END IF;
    v_max := coalesce(p_max_tokens,
                      CASE WHEN coalesce(l.max_output_tokens, 0) = 0 THEN l.default_max_tokens
                           ELSE least(l.default_max_tokens, l.max_output_tokens) END);
    IF l.max_output_tokens IS NOT NULL AND v_max > l.max_output_tokens THEN
        RETURN QUERY SELECT 'max_tokens', NULL::bigint, v_max, NULL::integer,
                            l.max_output_tokens, NULL::bigint, l.model_name;
        RETURN;
    END IF;
    v_reserved := p_prompt_reserve + v_max;

    -- The reservation: the user's row, created with it if missing (then only this call's own
    -- amounts need to fit), else locked and updated only if every cap still holds. Counters
    -- are never negative, so a call that does not fit a new row fits no existing one either.
    -- Counters only move forward: the periods come from the caller's clock, read before the
    -- statement waited for the row's lock (or from a worker whose clock is a moment behind),
    -- so a call of a period the counter has left is counted in the counter's newer one
    -- instead of taking the counter back (which gave the newer period a fresh allowance).
    INSERT INTO conversations_usageaccount AS c
        (user_id, day_start, day_used, month_start, month_used, minute_start, minute_used,
         streams)
    SELECT p_user_id, p_day, v_reserved, p_month, v_reserved, p_minute, v_request,
           v_holds_stream::integer
     WHERE (l.tokens_per_day IS NULL OR v_reserved <= l.tokens_per_day)
       AND (l.tokens_per_month IS NULL OR v_reserved <= l.tokens_per_month)
       AND (l.requests_per_minute IS NULL OR v_request <= l.requests_per_minute)
       AND (l.concurrent_streams IS NULL OR NOT v_holds_stream OR 1 <= l.concurrent_streams)
    ON CONFLICT (user_id) DO UPDATE SET
        day_start = greatest(c.day_start, p_day),
        day_used = CASE WHEN p_day > c.day_start THEN 0 ELSE c.day_used END + v_reserved,
        month_start = greatest(c.month_start, p_month),
        month_used = CASE WHEN p_month > c.month_start THEN 0 ELSE c.month_used END
                     + v_reserved,
        minute_start = greatest(c.minute_start, p_minute),
        minute_used = CASE WHEN p_minute > c.minute_start THEN 0 ELSE c.minute_used END
                      + v_request,
        streams = c.streams + v_holds_stream::integer
     WHERE (l.tokens_per_day IS NULL OR
            CASE WHEN p_day > c.day_start THEN 0 ELSE c.day_used END + v_reserved
            <= l.tokens_per_day)
       AND (l.tokens_per_month IS NULL OR
            CASE WHEN p_month > c.month_start THEN 0 ELSE c.month_used END + v_reserved
            <= l.tokens_per_month)
       AND (l.requests_per_minute IS NULL OR v_request = 0 OR
            CASE WHEN p_minute > c.minute_start THEN 0 ELSE c.minute_used END + 1
            <= l.requests_per_minute)
       AND (l.concurrent_streams IS NULL OR NOT v_holds_stream
            OR c.streams + 1 <= l.concurrent_streams)
    -- The periods the call is counted in: the ledger row's, which its settlement gives back to.
    RETURNING c.day_start, c.month_start INTO a;

    IF NOT FOUND THEN  -- refused: say which limit (the row, if any, is locked by this call)
        SELECT CASE WHEN p_day > c.day_start THEN 0 ELSE greatest(c.day_used, 0) END AS day,
               CASE WHEN p_month > c.month_start THEN 0 ELSE greatest(c.month_used, 0) END
                   AS month,
               CASE WHEN p_minute > c.minute_start THEN 0 ELSE c.minute_used END AS minute,
               c.streams
          INTO a FROM conversations_usageaccount c WHERE c.user_id = p_user_id;
        IF NOT FOUND THEN
            SELECT 0::bigint AS day, 0::bigint AS month, 0 AS minute, 0 AS streams INTO a;
        END IF;
        -- Of the limits in the way, the one that holds the longest: the month, the day,
        -- a running reply, the minute (told the day, the user would retry tomorrow in vain).
        IF l.tokens_per_month IS NOT NULL AND a.month + v_reserved > l.tokens_per_month THEN
            RETURN QUERY SELECT 'month', NULL::bigint, v_max, v_reserved, l.tokens_per_month,
                                a.month, l.model_name;
        ELSIF l.tokens_per_day IS NOT NULL AND a.day + v_reserved > l.tokens_per_day THEN
            RETURN QUERY SELECT 'day', NULL::bigint, v_max, v_reserved, l.tokens_per_day,
                                a.day, l.model_name;
        ELSIF v_holds_stream AND l.concurrent_streams IS NOT NULL
              AND a.streams + 1 > l.concurrent_streams THEN
            RETURN QUERY SELECT 'streams', NULL::bigint, v_max, v_reserved,
                                l.concurrent_streams, a.streams::bigint, l.model_name;
        ELSE  -- the one cap left
            RETURN QUERY SELECT 'minute', NULL::bigint, v_max, v_reserved,
                                l.requests_per_minute, a.minute::bigint, l.model_name;
        END IF;
        RETURN;
    END IF;

    INSERT INTO conversations_usagerecord (
        user_id, model_id, purpose, conversation_id, message_id, api_key_id, state,
        reserved_tokens, outcome, prompt_tokens, cache_hit_tokens, cache_miss_tokens,
        completion_tokens, reasoning_tokens, total_tokens, cost, estimated, day_start,
        month_start, holds_stream, created_at, settled_at)
    VALUES (
        p_user_id, p_model_id, p_purpose, p_conversation_id, p_message_id, p_api_key_id,
        'reserved', v_reserved, '', p_prompt_tokens, 0, p_prompt_tokens, 0, 0, 0, 0, false,
        a.day_start, a.month_start, v_holds_stream, p_now, NULL)
    RETURNING id INTO v_record;
    RETURN QUERY SELECT 'admitted', v_record, v_max, v_reserved, NULL::bigint, NULL::bigint,
                        l.model_name;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("conversations", "0023_an_estimate_keeps_its_reasoning")]

    operations = [migrations.RunSQL(ADMIT, reverse_sql=previous.ADMIT)]
