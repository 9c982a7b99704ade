"""A user's own limit can be unlimited, whatever the policy that applies to them says.

Each overridable limit of ``UserLimits`` gets a ``<field>_unlimited`` flag, false on every row
stored so far: a blank field still takes the policy's value and a number is still that number;
a flag set (its number then blank, which a constraint holds) lifts that limit for the user.
``usage_limits`` (0007; admission, the API's key check and model list all read it) honours
the flag as ``quota.limits_for`` does: same signature and columns, one more column read from
the row it already reads. Rolled back, the flags are dropped and an unlimited override is
blank again (it inherits): the previous schema cannot say "unlimited" on a user.
"""

from importlib import import_module

from django.db import migrations, models

previous = import_module("conversations.migrations.0007_usage_admit_settle_functions")

FIELDS = (
    "tokens_per_day",
    "tokens_per_month",
    "max_output_tokens",
    "requests_per_minute",
    "concurrent_streams",
)

LIMITS = r"""
CREATE OR REPLACE FUNCTION usage_limits(p_user_id bigint, p_model_id bigint)
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
    -- fields, each unlimited (NULL), a number, or blank (the policy's), and suspension.
    -- One statement, inlined into the caller's.
    SELECT u.is_active, coalesce(l.suspended, false),
           CASE WHEN l.tokens_per_day_unlimited THEN NULL
                ELSE coalesce(l.tokens_per_day, pol.tokens_per_day) END,
           CASE WHEN l.tokens_per_month_unlimited THEN NULL
                ELSE coalesce(l.tokens_per_month, pol.tokens_per_month) END,
           CASE WHEN l.max_output_tokens_unlimited THEN NULL
                ELSE coalesce(l.max_output_tokens, pol.max_output_tokens) END,
           CASE WHEN l.requests_per_minute_unlimited THEN NULL
                ELSE coalesce(l.requests_per_minute, pol.requests_per_minute) END,
           CASE WHEN l.concurrent_streams_unlimited THEN NULL
                ELSE coalesce(l.concurrent_streams, pol.concurrent_streams) END,
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


class Migration(migrations.Migration):
    dependencies = [("conversations", "0019_link_requests")]

    operations = [
        *(
            migrations.AddField(
                model_name="userlimits",
                name=f"{name}_unlimited",
                field=models.BooleanField(db_default=False, default=False),
            )
            for name in FIELDS
        ),
        *(
            migrations.AddConstraint(
                model_name="userlimits",
                constraint=models.CheckConstraint(
                    condition=models.Q(**{f"{name}_unlimited": False})
                    | models.Q(**{f"{name}__isnull": True}),
                    name=f"userlimits_{name}_unlimited_or_a_number",
                    violation_error_message=f"{name.replace('_', ' ').capitalize()} is either "
                    "unlimited or a number, not both.",
                ),
            )
            for name in FIELDS
        ),
        # Reversed first: the previous function, which reads none of the flags, is back
        # before they are dropped.
        migrations.RunSQL(
            [LIMITS],
            reverse_sql=[
                previous.LIMITS.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
            ],
        ),
    ]
