"""A change of the deployment's time zone counts the user's day and month again from the ledger.

Admission (``usage_admit``, 0024) started a new day whenever the day a call named was later
than the counter's, and kept counting in the counter's day when it was earlier (a worker whose
clock is a moment behind). A change of ``TIME_ZONE`` moves midnight by hours, not a day: to a
zone east of the old one, the counter's day was taken for over and today started again from
zero (a user at the day's limit was given the day's allowance again); back west, the new day
went on counting in the old zone's, and the usage page, which shows a counter only for the
period it names, said 0 used beside a chart of the day's tokens.

Now a period start that is neither the counter's nor a whole period away from it (midnights
of one zone are 23 to 25 hours apart, months 28 to 31 days) means the periods were redefined:
the counter's day and month are counted again from the ledger — the worst case of each call
still running, the tokens of each that ended, of the calls made since the new period began —
and those calls are named in the new period, so that their settlements give back to it. Then
admission goes on as before.
"""

from importlib import import_module

from django.db import migrations

previous = import_module("conversations.migrations.0024_usage_counters_only_move_forward")

REDEFINED = """
CREATE OR REPLACE FUNCTION usage_periods_redefined(
    p_day_start timestamptz, p_month_start timestamptz, p_day timestamptz, p_month timestamptz
) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    -- Whether the periods named are of another time zone than the counter's: a start that is
    -- not the counter's, and less than a whole period before or after it.
    SELECT (p_day <> p_day_start AND abs(extract(epoch FROM p_day - p_day_start)) < 23 * 3600)
        OR (p_month <> p_month_start
            AND abs(extract(epoch FROM p_month - p_month_start)) < 27 * 86400)
$$;

CREATE OR REPLACE FUNCTION usage_recount_periods(
    p_user_id bigint, p_day timestamptz, p_month timestamptz
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    -- The user's counter, locked (a concurrent admission that saw the same change finds it
    -- counted again once this commits, and does nothing).
    SELECT * INTO c FROM conversations_usageaccount a WHERE a.user_id = p_user_id FOR UPDATE;
    IF NOT FOUND OR NOT usage_periods_redefined(c.day_start, c.month_start, p_day, p_month) THEN
        RETURN;
    END IF;
    IF p_day <> c.day_start AND abs(extract(epoch FROM p_day - c.day_start)) < 23 * 3600 THEN
        UPDATE conversations_usagerecord u SET day_start = p_day
         WHERE u.user_id = p_user_id AND u.created_at >= p_day AND u.day_start <> p_day;
        UPDATE conversations_usageaccount a
           SET day_start = p_day,
               day_used = (SELECT coalesce(sum(CASE WHEN u.state = 'reserved'
                                                    THEN u.reserved_tokens
                                                    ELSE u.total_tokens END), 0)
                             FROM conversations_usagerecord u
                            WHERE u.user_id = p_user_id AND u.created_at >= p_day)
         WHERE a.user_id = p_user_id;
    END IF;
    IF p_month <> c.month_start
       AND abs(extract(epoch FROM p_month - c.month_start)) < 27 * 86400 THEN
        UPDATE conversations_usagerecord u SET month_start = p_month
         WHERE u.user_id = p_user_id AND u.created_at >= p_month AND u.month_start <> p_month;
        UPDATE conversations_usageaccount a
           SET month_start = p_month,
               month_used = (SELECT coalesce(sum(CASE WHEN u.state = 'reserved'
                                                      THEN u.reserved_tokens
                                                      ELSE u.total_tokens END), 0)
                               FROM conversations_usagerecord u
                              WHERE u.user_id = p_user_id AND u.created_at >= p_month)
         WHERE a.user_id = p_user_id;
    END IF;
END
$$;
"""

DROP_REDEFINED = """
DROP FUNCTION IF EXISTS usage_recount_periods(bigint, timestamptz, timestamptz);
DROP FUNCTION IF EXISTS usage_periods_redefined(timestamptz, timestamptz, timestamptz, timestamptz);
"""

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
    s record;
BEGIN
    -- The deployment's time zone changed since the counter was last moved: its periods are
    -- no longer this zone's, and it is counted again from the ledger first (see
    -- usage_recount_periods). One index lookup; nothing more unless the zone changed.
    SELECT c.day_start, c.month_start INTO s
      FROM conversations_usageaccount c WHERE c.user_id = p_user_id;
    IF FOUND AND usage_periods_redefined(s.day_start, s.month_start, p_day, p_month) THEN
        PERFORM usage_recount_periods(p_user_id, p_day, p_month);
    END IF;
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
    dependencies = [("conversations", "0028_a_take_back_keeps_to_the_users_models")]

    operations = [
        migrations.RunSQL(REDEFINED, reverse_sql=DROP_REDEFINED),
        migrations.RunSQL(ADMIT, reverse_sql=previous.ADMIT),
    ]
