"""A change of the deployment's time zone counts the user's day and month again from the ledger.

Admission (``usage_admit``, 0024 and 0025) started a new day whenever the day a call named was later
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

# usage_admit as 0025 last defined it (0024's, with the ledger row's worst case).
previous = import_module("conversations.migrations.0025_a_taken_back_call_holds_its_worst_case")

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
    -- The user's calls it names again, locked first, then the user's counter: in the order a
    -- settlement or a take-back locks them (its call, then the counter), so that one running
    -- meanwhile waits or is waited for, never deadlocks with this.
    PERFORM 1 FROM conversations_usagerecord u
      WHERE u.user_id = p_user_id AND u.created_at >= least(p_day, p_month)
      ORDER BY u.id FOR UPDATE;
    -- The counter, locked (a concurrent admission that saw the same change finds it counted
    -- again once this commits, and does nothing).
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

_BEGIN = """
    v_request integer := (p_purpose <> 'title')::integer;
BEGIN
    SELECT * INTO l FROM usage_limits(p_user_id, p_model_id);
"""
assert previous.ADMIT.count(_BEGIN) == 1
ADMIT = previous.ADMIT.replace(
    _BEGIN,
    """
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
""",
)


class Migration(migrations.Migration):
    dependencies = [("conversations", "0028_a_take_back_keeps_to_the_users_models")]

    operations = [
        migrations.RunSQL(REDEFINED, reverse_sql=DROP_REDEFINED),
        migrations.RunSQL(ADMIT, reverse_sql=previous.ADMIT),
    ]
