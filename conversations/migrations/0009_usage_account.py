"""One row of running totals per user (``UsageAccount``) instead of a counter row per period.

Admission used to find, create, lock and update up to four counter rows (day, month, minute,
streams); it now reserves with one conditional upsert of the user's one row (``INSERT ... ON
CONFLICT DO UPDATE ... WHERE`` every cap holds: PostgreSQL locks the row and checks the caps
against its latest version, so concurrent admissions of one user queue on it and none
overshoots). A period that has passed counts as 0 and restarts on the next admission.
Settlement gives back the unused reservation on the same row, to the period the call was
admitted in (nothing, once that period is over), and the stream slot.

The current periods' counters are carried over; older periods live on in the ledger only.
The refusal outcomes, the ledger row and the meaning of each returned column are as in 0007.
"""

from importlib import import_module

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

previous = import_module("conversations.migrations.0007_usage_admit_settle_functions")

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
    SELECT p_user_id, p_day, v_reserved, p_month, v_reserved, p_minute, 1, 1
     WHERE (l.tokens_per_day IS NULL OR v_reserved <= l.tokens_per_day)
       AND (l.tokens_per_month IS NULL OR v_reserved <= l.tokens_per_month)
       AND (l.requests_per_minute IS NULL OR 1 <= l.requests_per_minute)
       AND (l.concurrent_streams IS NULL OR 1 <= l.concurrent_streams)
    ON CONFLICT (user_id) DO UPDATE SET
        day_start = p_day,
        day_used = CASE WHEN c.day_start = p_day THEN c.day_used ELSE 0 END + v_reserved,
        month_start = p_month,
        month_used = CASE WHEN c.month_start = p_month THEN c.month_used ELSE 0 END
                     + v_reserved,
        minute_start = p_minute,
        minute_used = CASE WHEN c.minute_start = p_minute THEN c.minute_used ELSE 0 END + 1,
        streams = c.streams + 1
     WHERE (l.tokens_per_day IS NULL OR
            CASE WHEN c.day_start = p_day THEN c.day_used ELSE 0 END + v_reserved
            <= l.tokens_per_day)
       AND (l.tokens_per_month IS NULL OR
            CASE WHEN c.month_start = p_month THEN c.month_used ELSE 0 END + v_reserved
            <= l.tokens_per_month)
       AND (l.requests_per_minute IS NULL OR
            CASE WHEN c.minute_start = p_minute THEN c.minute_used ELSE 0 END + 1
            <= l.requests_per_minute)
       AND (l.concurrent_streams IS NULL OR c.streams + 1 <= l.concurrent_streams)
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
        IF l.concurrent_streams IS NOT NULL AND a.streams + 1 > l.concurrent_streams THEN
            RETURN QUERY SELECT 'streams', NULL::bigint, v_max, v_reserved,
                                l.concurrent_streams, a.streams::bigint, l.model_name;
        ELSIF l.requests_per_minute IS NOT NULL AND a.minute + 1 > l.requests_per_minute THEN
            RETURN QUERY SELECT 'minute', NULL::bigint, v_max, v_reserved,
                                l.requests_per_minute, a.minute::bigint, l.model_name;
        ELSIF l.tokens_per_day IS NOT NULL AND a.day + v_reserved > l.tokens_per_day THEN
            RETURN QUERY SELECT 'day', NULL::bigint, v_max, v_reserved, l.tokens_per_day,
                                a.day, l.model_name;
        ELSE
            RETURN QUERY SELECT 'month', NULL::bigint, v_max, v_reserved, l.tokens_per_month,
                                a.month, l.model_name;
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
                        l.model_name;
END
$$;
"""

SETTLE = r"""
CREATE OR REPLACE FUNCTION usage_settle(
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
    -- Give back what was reserved and not used, to the day and month the call was admitted
    -- in (a period already over keeps no counter), and the stream slot.
    UPDATE conversations_usageaccount c
       SET day_used = c.day_used + CASE WHEN c.day_start = r.day_start
                                        THEN v_prompt + p_completion - r.reserved_tokens
                                        ELSE 0 END,
           month_used = c.month_used + CASE WHEN c.month_start = r.month_start
                                            THEN v_prompt + p_completion - r.reserved_tokens
                                            ELSE 0 END,
           streams = c.streams - r.holds_stream::integer
     WHERE c.user_id = r.user_id;
    RETURN true;
END
$$;
"""

# The current periods' counters of each user (the latest row of each period).
CARRY_OVER = """
INSERT INTO conversations_usageaccount
    (user_id, day_start, day_used, month_start, month_used, minute_start, minute_used, streams)
SELECT u.id,
       coalesce(d.start, 'epoch'), coalesce(d.used, 0),
       coalesce(m.start, 'epoch'), coalesce(m.used, 0),
       coalesce(n.start, 'epoch'), coalesce(n.used, 0),
       greatest(coalesce(s.used, 0), 0)
  FROM conversations_user u
  LEFT JOIN LATERAL (SELECT c.start, c.used FROM conversations_usagecounter c
                      WHERE c.user_id = u.id AND c.period = 'day'
                      ORDER BY c.start DESC LIMIT 1) d ON true
  LEFT JOIN LATERAL (SELECT c.start, c.used FROM conversations_usagecounter c
                      WHERE c.user_id = u.id AND c.period = 'month'
                      ORDER BY c.start DESC LIMIT 1) m ON true
  LEFT JOIN LATERAL (SELECT c.start, c.used FROM conversations_usagecounter c
                      WHERE c.user_id = u.id AND c.period = 'minute'
                      ORDER BY c.start DESC LIMIT 1) n ON true
  LEFT JOIN LATERAL (SELECT c.used FROM conversations_usagecounter c
                      WHERE c.user_id = u.id AND c.period = 'streams'
                      ORDER BY c.start DESC LIMIT 1) s ON true
 WHERE d.start IS NOT NULL OR m.start IS NOT NULL OR n.start IS NOT NULL OR s.used IS NOT NULL
"""

CARRY_BACK = """
INSERT INTO conversations_usagecounter (user_id, period, start, used)
SELECT a.user_id, v.period, v.start, v.used
  FROM conversations_usageaccount a
 CROSS JOIN LATERAL (VALUES ('day', a.day_start, a.day_used),
                            ('month', a.month_start, a.month_used),
                            ('minute', a.minute_start, a.minute_used::bigint),
                            ('streams', timestamptz '2000-01-01 00:00+00', a.streams::bigint))
       AS v(period, start, used)
"""

OLD_ADMIT_SIGNATURE = (
    "usage_admit(bigint, bigint, text, integer, integer, integer, uuid, uuid, bigint, boolean, "
    "timestamptz, timestamptz, timestamptz, timestamptz, timestamptz)"
)
NEW_ADMIT_SIGNATURE = (
    "usage_admit(bigint, bigint, text, integer, integer, integer, uuid, uuid, bigint, boolean, "
    "timestamptz, timestamptz, timestamptz, timestamptz)"
)

SETTLE_SIGNATURE = (
    "usage_settle(bigint, text, boolean, integer, integer, integer, integer, integer, text)"
)


class Migration(migrations.Migration):
    dependencies = [("conversations", "0008_sharing_settings")]

    operations = [
        migrations.CreateModel(
            name="UsageAccount",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("day_start", models.DateTimeField()),
                ("day_used", models.BigIntegerField(default=0)),
                ("month_start", models.DateTimeField()),
                ("month_used", models.BigIntegerField(default=0)),
                ("minute_start", models.DateTimeField()),
                ("minute_used", models.IntegerField(default=0)),
                ("streams", models.IntegerField(default=0)),
            ],
        ),
        # Room on each page for the row's next versions: updates stay HOT (no index entry).
        migrations.RunSQL(
            "ALTER TABLE conversations_usageaccount SET (fillfactor = 50)",
            reverse_sql=migrations.RunSQL.noop,
        ),
        migrations.RunSQL(CARRY_OVER, reverse_sql=CARRY_BACK),
        migrations.RunSQL(
            [f"DROP FUNCTION {OLD_ADMIT_SIGNATURE}", ADMIT, SETTLE],
            reverse_sql=[
                f"DROP FUNCTION {NEW_ADMIT_SIGNATURE}",
                f"DROP FUNCTION {SETTLE_SIGNATURE}",
                previous.ADMIT,
                previous.SETTLE,
            ],
        ),
        migrations.DeleteModel(name="UsageCounter"),
    ]
