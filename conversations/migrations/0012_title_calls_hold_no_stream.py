"""A title call holds no stream slot: ``usage_admit`` (as in 0011) admits, reserves and
inserts its ledger row like any call's, but neither counts it among the user's replies running
at once nor refuses it for them (with one reply allowed at a time, the title call that follows
a reply took the slot, and the user's next message was refused). Same signature: every caller
keeps working. Settlement already gives back only the slot a call held (``holds_stream``)."""

from importlib import import_module

from django.db import migrations

previous = import_module("conversations.migrations.0011_usage_admit_names_the_binding_limit")

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
    -- A title is the app's own small call after a reply, not a reply the user runs: it is
    -- admitted, reserved and settled like any call, but holds no stream slot.
    v_holds_stream boolean := p_purpose <> 'title';
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
    INSERT INTO conversations_usageaccount AS c
        (user_id, day_start, day_used, month_start, month_used, minute_start, minute_used,
         streams)
    SELECT p_user_id, p_day, v_reserved, p_month, v_reserved, p_minute, 1,
           v_holds_stream::integer
     WHERE (l.tokens_per_day IS NULL OR v_reserved <= l.tokens_per_day)
       AND (l.tokens_per_month IS NULL OR v_reserved <= l.tokens_per_month)
       AND (l.requests_per_minute IS NULL OR 1 <= l.requests_per_minute)
       AND (l.concurrent_streams IS NULL OR NOT v_holds_stream OR 1 <= l.concurrent_streams)
    ON CONFLICT (user_id) DO UPDATE SET
        day_start = p_day,
        day_used = CASE WHEN c.day_start = p_day THEN c.day_used ELSE 0 END + v_reserved,
        month_start = p_month,
        month_used = CASE WHEN c.month_start = p_month THEN c.month_used ELSE 0 END
                     + v_reserved,
        minute_start = p_minute,
        minute_used = CASE WHEN c.minute_start = p_minute THEN c.minute_used ELSE 0 END + 1,
        streams = c.streams + v_holds_stream::integer
     WHERE (l.tokens_per_day IS NULL OR
            CASE WHEN c.day_start = p_day THEN c.day_used ELSE 0 END + v_reserved
            <= l.tokens_per_day)
       AND (l.tokens_per_month IS NULL OR
            CASE WHEN c.month_start = p_month THEN c.month_used ELSE 0 END + v_reserved
            <= l.tokens_per_month)
       AND (l.requests_per_minute IS NULL OR
            CASE WHEN c.minute_start = p_minute THEN c.minute_used ELSE 0 END + 1
            <= l.requests_per_minute)
       AND (l.concurrent_streams IS NULL OR NOT v_holds_stream
            OR c.streams + 1 <= l.concurrent_streams)
    RETURNING c.user_id INTO a;

    IF NOT FOUND THEN  -- refused: say which limit (the row, if any, is locked by this call)
        SELECT CASE WHEN c.day_start = p_day THEN greatest(c.day_used, 0) ELSE 0 END AS day,
               CASE WHEN c.month_start = p_month THEN greatest(c.month_used, 0) ELSE 0 END
                   AS month,
               CASE WHEN c.minute_start = p_minute THEN c.minute_used ELSE 0 END AS minute,
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
        p_day, p_month, v_holds_stream, p_now, NULL)
    RETURNING id INTO v_record;
    RETURN QUERY SELECT 'admitted', v_record, v_max, v_reserved, NULL::bigint, NULL::bigint,
                        l.model_name;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("conversations", "0011_usage_admit_names_the_binding_limit")]

    operations = [migrations.RunSQL(ADMIT, reverse_sql=previous.ADMIT)]
