"""Admission and settlement as two SQL functions, so each is one round trip to PostgreSQL.

``usage_admit`` resolves the user's effective limits exactly as ``quota.limits_for`` does,
checks the account, the model and the output cap, reserves the worst case on the day, month,
minute and streams counters (rows locked in id order: concurrent admissions and settlements
of one user queue, never deadlock) and inserts the ``reserved`` ledger row. ``usage_settle``
turns a reserved row into what the call used, once, costed at the price of its local day, and
gives back the unused reservation and the stream slot. ``conversations/quota.py`` is the only
caller and words the refusals; see it for the meaning of each returned column.
"""

from django.db import migrations

LIMITS = r"""
CREATE FUNCTION usage_limits(p_user_id bigint, p_model_id bigint)
RETURNS TABLE (
    is_active boolean,
    suspended boolean,
    tokens_per_day bigint,
    tokens_per_month bigint,
    max_output_tokens bigint,
    requests_per_minute bigint,
    concurrent_streams bigint,
    api_access boolean,
    model_allowed boolean,   -- by the user's policy (enabled or not)
    model_enabled boolean,
    default_max_tokens integer,
    model_name text
)
LANGUAGE sql STABLE AS $$
    -- The user's own policy if assigned, else the most generous of their groups' policies
    -- field by field (unlimited beats any number; models: the union unless one allows all;
    -- API access: any), else the default policy, else no limits; then the user's own
    -- non-blank fields and suspension. One statement, inlined into the caller's.
    SELECT u.is_active, coalesce(l.suspended, false),
           coalesce(l.tokens_per_day, pol.tokens_per_day),
           coalesce(l.tokens_per_month, pol.tokens_per_month),
           coalesce(l.max_output_tokens, pol.max_output_tokens),
           coalesce(l.requests_per_minute, pol.requests_per_minute),
           coalesce(l.concurrent_streams, pol.concurrent_streams),
           pol.api_access, pol.allowed, m.enabled, m.default_max_tokens, m.name::text
      FROM conversations_user u
      LEFT JOIN conversations_userlimits l ON l.user_id = u.id
      LEFT JOIN conversations_modelconfig m ON m.id = p_model_id
     CROSS JOIN LATERAL (
        SELECT CASE WHEN bool_or(p.tokens_per_day IS NULL) THEN NULL
                    ELSE max(p.tokens_per_day) END AS tokens_per_day,
               CASE WHEN bool_or(p.tokens_per_month IS NULL) THEN NULL
                    ELSE max(p.tokens_per_month) END AS tokens_per_month,
               CASE WHEN bool_or(p.max_output_tokens IS NULL) THEN NULL
                    ELSE max(p.max_output_tokens) END AS max_output_tokens,
               CASE WHEN bool_or(p.requests_per_minute IS NULL) THEN NULL
                    ELSE max(p.requests_per_minute) END AS requests_per_minute,
               CASE WHEN bool_or(p.concurrent_streams IS NULL) THEN NULL
                    ELSE max(p.concurrent_streams) END AS concurrent_streams,
               coalesce(bool_or(p.api_access), true) AS api_access,
               coalesce(bool_or(p.all_models OR EXISTS (
                   SELECT 1 FROM conversations_policy_allowed_models a
                    WHERE a.policy_id = p.id AND a.modelconfig_id = p_model_id)), true) AS allowed
          FROM conversations_policy p
         WHERE p.id = l.policy_id
            OR (l.policy_id IS NULL AND EXISTS (
                   SELECT 1 FROM conversations_policy_groups g
                     JOIN conversations_user_groups ug ON ug.group_id = g.group_id
                    WHERE ug.user_id = u.id AND g.policy_id = p.id))
            OR (l.policy_id IS NULL AND p.is_default AND NOT EXISTS (
                   SELECT 1 FROM conversations_policy_groups g
                     JOIN conversations_user_groups ug ON ug.group_id = g.group_id
                    WHERE ug.user_id = u.id))
     ) AS pol
     WHERE u.id = p_user_id
$$;
"""

ADMIT = r"""
CREATE FUNCTION usage_admit(
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
    p_month timestamptz,
    p_streams_epoch timestamptz
) RETURNS TABLE (
    outcome text,           -- 'admitted', or what refused: 'suspended', 'api_access',
                            -- 'model', 'max_tokens', 'streams', 'minute', 'day', 'month'
    record_id bigint,       -- the ledger row (admitted only)
    max_tokens integer,     -- the output budget (p_max_tokens, or the model's default in the cap)
    reserved integer,       -- tokens reserved on the day and month counters
    cap bigint,             -- refused: the limit that refused
    used bigint,            -- refused on day/month: tokens used or reserved before this call
    model_name text
)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_active boolean;
    v_enabled boolean;
    v_default_max integer;
    v_model_name text;
    v_suspended boolean;
    v_day bigint;
    v_month bigint;
    v_out bigint;
    v_rpm bigint;
    v_streams bigint;
    v_api boolean;
    v_allowed boolean;
    v_counters integer;
    v_max integer;
    v_reserved integer;
    v_taken integer;
    v_used_day bigint;
    v_used_month bigint;
    v_used_minute bigint;
    v_used_streams bigint;
    v_record bigint;
BEGIN
    SELECT l.is_active, l.model_enabled, l.default_max_tokens, l.model_name, l.suspended,
           l.tokens_per_day, l.tokens_per_month, l.max_output_tokens, l.requests_per_minute,
           l.concurrent_streams, l.api_access, l.model_allowed
      INTO v_active, v_enabled, v_default_max, v_model_name, v_suspended, v_day, v_month, v_out,
           v_rpm, v_streams, v_api, v_allowed
      FROM usage_limits(p_user_id, p_model_id) AS l;

    IF v_active IS NOT TRUE OR v_suspended THEN
        RETURN QUERY SELECT 'suspended', NULL::bigint, NULL::integer, NULL::integer,
                            NULL::bigint, NULL::bigint, v_model_name;
        RETURN;
    END IF;
    IF p_check_api_access AND v_api IS NOT TRUE THEN
        RETURN QUERY SELECT 'api_access', NULL::bigint, NULL::integer, NULL::integer,
                            NULL::bigint, NULL::bigint, v_model_name;
        RETURN;
    END IF;
    IF v_enabled IS NOT TRUE OR v_allowed IS NOT TRUE THEN
        RETURN QUERY SELECT 'model', NULL::bigint, NULL::integer, NULL::integer,
                            NULL::bigint, NULL::bigint, v_model_name;
        RETURN;
    END IF;
    v_max := coalesce(p_max_tokens, CASE WHEN coalesce(v_out, 0) = 0 THEN v_default_max
                                         ELSE least(v_default_max, v_out) END);
    IF v_out IS NOT NULL AND v_max > v_out THEN
        RETURN QUERY SELECT 'max_tokens', NULL::bigint, v_max, NULL::integer,
                            v_out, NULL::bigint, v_model_name;
        RETURN;
    END IF;
    v_reserved := p_prompt_reserve + v_max;

    -- A new day, month or minute needs its row first. Inserted before anything is locked:
    -- waiting here on another call inserting the same row must not hold a lock it needs.
    SELECT count(*) INTO v_counters FROM conversations_usagecounter c
     WHERE c.user_id = p_user_id
       AND ((c.period = 'day' AND c.start = p_day)
            OR (c.period = 'month' AND c.start = p_month)
            OR (c.period = 'streams' AND c.start = p_streams_epoch)
            OR (v_rpm IS NOT NULL AND c.period = 'minute' AND c.start = p_minute));
    IF v_counters < 3 + (v_rpm IS NOT NULL)::integer THEN
        INSERT INTO conversations_usagecounter (user_id, period, start, used)
        SELECT p_user_id, v.period, v.start, 0
          FROM (VALUES ('day', p_day), ('month', p_month), ('streams', p_streams_epoch),
                       ('minute', p_minute)) AS v(period, start)
         WHERE v.period <> 'minute' OR v_rpm IS NOT NULL
        ON CONFLICT (user_id, period, start) DO NOTHING;
    END IF;

    -- Rows locked in id order, as settlement does: concurrent calls of one user queue here and
    -- each checks every cap against the committed values; all rows take their amount or none.
    WITH locked AS MATERIALIZED (
        SELECT c.id, c.period, c.used FROM conversations_usagecounter c
         WHERE c.user_id = p_user_id
           AND ((c.period = 'day' AND c.start = p_day)
                OR (c.period = 'month' AND c.start = p_month)
                OR (c.period = 'streams' AND c.start = p_streams_epoch)
                OR (v_rpm IS NOT NULL AND c.period = 'minute' AND c.start = p_minute))
         ORDER BY c.id FOR UPDATE),
    wanted AS (
        SELECT k.id, CASE WHEN k.period IN ('day', 'month') THEN v_reserved ELSE 1 END AS amount,
               CASE k.period WHEN 'day' THEN v_day WHEN 'month' THEN v_month
                             WHEN 'minute' THEN v_rpm ELSE v_streams END AS cap,
               k.used
          FROM locked k),
    verdict AS (SELECT bool_and(w.cap IS NULL OR w.used + w.amount <= w.cap) AS ok FROM wanted w)
    UPDATE conversations_usagecounter c SET used = c.used + w.amount
      FROM wanted w, verdict
     WHERE verdict.ok AND c.id = w.id;
    GET DIAGNOSTICS v_taken = ROW_COUNT;

    IF v_taken = 0 THEN  -- refused: say which limit (the rows are still locked by this call)
        SELECT max(c.used) FILTER (WHERE c.period = 'day'),
               max(c.used) FILTER (WHERE c.period = 'month'),
               max(c.used) FILTER (WHERE c.period = 'minute'),
               max(c.used) FILTER (WHERE c.period = 'streams')
          INTO v_used_day, v_used_month, v_used_minute, v_used_streams
          FROM conversations_usagecounter c
         WHERE c.user_id = p_user_id
           AND ((c.period = 'day' AND c.start = p_day)
                OR (c.period = 'month' AND c.start = p_month)
                OR (c.period = 'streams' AND c.start = p_streams_epoch)
                OR (c.period = 'minute' AND c.start = p_minute));
        IF v_streams IS NOT NULL AND v_used_streams + 1 > v_streams THEN
            RETURN QUERY SELECT 'streams', NULL::bigint, v_max, v_reserved, v_streams,
                                v_used_streams, v_model_name;
        ELSIF v_rpm IS NOT NULL AND v_used_minute + 1 > v_rpm THEN
            RETURN QUERY SELECT 'minute', NULL::bigint, v_max, v_reserved, v_rpm,
                                v_used_minute, v_model_name;
        ELSIF v_day IS NOT NULL AND v_used_day + v_reserved > v_day THEN
            RETURN QUERY SELECT 'day', NULL::bigint, v_max, v_reserved, v_day,
                                greatest(v_used_day, 0), v_model_name;
        ELSE
            RETURN QUERY SELECT 'month', NULL::bigint, v_max, v_reserved, v_month,
                                greatest(v_used_month, 0), v_model_name;
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
        p_day, p_month, true, p_now, NULL)
    RETURNING id INTO v_record;
    RETURN QUERY SELECT 'admitted', v_record, v_max, v_reserved, NULL::bigint, NULL::bigint,
                        v_model_name;
END
$$;
"""

SETTLE = r"""
CREATE FUNCTION usage_settle(
    p_record_id bigint,
    p_outcome text,
    p_has_usage boolean,        -- false: estimate (prompt as admitted, completion given)
    p_prompt integer,
    p_cache_hit integer,
    p_cache_miss integer,
    p_completion integer,
    p_reasoning integer,
    p_time_zone text            -- the deployment's zone: a call is costed at its local day
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
    SELECT u.id, u.user_id, u.model_id, u.prompt_tokens, u.reserved_tokens, u.day_start,
           u.month_start, u.holds_stream, u.created_at
      INTO r FROM conversations_usagerecord u
     WHERE u.id = p_record_id AND u.state = 'reserved' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF NOT p_has_usage THEN
        v_prompt := r.prompt_tokens;
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
       SET state = 'settled', outcome = p_outcome, reserved_tokens = 0,
           prompt_tokens = v_prompt, cache_hit_tokens = v_hit, cache_miss_tokens = v_miss,
           completion_tokens = p_completion, reasoning_tokens = v_reasoning,
           total_tokens = v_prompt + p_completion,
           -- exact (scale 10), rounded to the column's 8 places as a Decimal from Python was
           cost = (v_hit * v_price_hit + v_miss * v_price_miss + p_completion * v_price_out)
                  * 0.000001,
           estimated = NOT p_has_usage, settled_at = clock_timestamp()
     WHERE u.id = r.id;
    -- The counters give back what was reserved and not used, and the stream slot; locked in
    -- id order, as admission does.
    WITH locked AS MATERIALIZED (
        SELECT c.id FROM conversations_usagecounter c
         WHERE c.user_id = r.user_id
           AND ((c.period = 'day' AND c.start = r.day_start)
                OR (c.period = 'month' AND c.start = r.month_start)
                OR (c.period = 'streams' AND r.holds_stream))
         ORDER BY c.id FOR UPDATE)
    UPDATE conversations_usagecounter c
       SET used = c.used + CASE WHEN c.period = 'streams' THEN -1
                                ELSE v_prompt + p_completion - r.reserved_tokens END
     WHERE c.id IN (SELECT id FROM locked);
    RETURN true;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("conversations", "0006_search_and_sharing_indexes")]

    operations = [
        migrations.RunSQL([LIMITS], reverse_sql=["DROP FUNCTION usage_limits(bigint, bigint)"]),
        # Lists: run as one statement each, not split (the bodies hold semicolons).
        migrations.RunSQL(
            [ADMIT],
            reverse_sql=[
                "DROP FUNCTION usage_admit(bigint, bigint, text, integer, integer, integer, uuid, "
                "uuid, bigint, boolean, timestamptz, timestamptz, timestamptz, timestamptz, "
                "timestamptz)"
            ],
        ),
        migrations.RunSQL(
            [SETTLE],
            reverse_sql=[
                "DROP FUNCTION usage_settle(bigint, text, boolean, integer, integer, integer, "
                "integer, integer, text)"
            ],
        ),
    ]
