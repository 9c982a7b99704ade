"""An output cap ("Max output tokens", a policy's or a user's own) is at least 1 token; blank is
no cap.

0 could be saved, and was read three ways: as no cap (``quota.max_tokens_for``, the composer's
estimate), as a cap refusing every chat reply (``usage_admit`` took the model's default, then
found it above 0), and, over the API, as the budget of a call admitted and sent upstream with
``max_tokens`` 0, which the upstream refused (a failed call counted against the minute's
requests). Now:

* each stored 0 is made blank, as it was meant where it was read as no cap: on a policy, no
  cap; on a user's own limits, "inherit from the policy" (the policy's value). Nothing else
  stored changes;
* a constraint refuses 0 in both tables (and the forms refuse it, saying so);
* ``usage_admit`` reads a blank cap as no cap (NULL, no longer "NULL or 0"), and refuses a call
  whose ``max_tokens`` would be below 1 however it came to be (the outcome
  ``max_tokens_below_one``): no call is sent upstream with less.
"""

from importlib import import_module
from typing import Any

import django.core.validators
from django.db import migrations, models

admit_before = import_module(
    "conversations.migrations.0029_a_time_zone_change_counts_the_periods_again"
)

_DEFAULT_WITHIN_CAP = """
                      CASE WHEN coalesce(l.max_output_tokens, 0) = 0 THEN l.default_max_tokens
"""
_OVER_THE_CAP = """
    IF l.max_output_tokens IS NOT NULL AND v_max > l.max_output_tokens THEN
"""
assert admit_before.ADMIT.count(_DEFAULT_WITHIN_CAP) == 1
assert admit_before.ADMIT.count(_OVER_THE_CAP) == 1
ADMIT = admit_before.ADMIT.replace(
    _DEFAULT_WITHIN_CAP,
    """
                      CASE WHEN l.max_output_tokens IS NULL THEN l.default_max_tokens
""",
).replace(
    _OVER_THE_CAP,
    """
    -- The upstream refuses a max_tokens below 1: such a call is refused here, reserving
    -- nothing, whichever way its budget came to be (a model's default of 0 stored in the
    -- registry past its form, a caller's own 0).
    IF v_max < 1 THEN
        RETURN QUERY SELECT 'max_tokens_below_one', NULL::bigint, v_max, NULL::integer,
                            l.max_output_tokens, NULL::bigint, l.model_name;
        RETURN;
    END IF;"""
    + _OVER_THE_CAP,
)

MESSAGE = "The output cap is at least 1 token: leave it blank for no cap."
AT_LEAST_ONE = models.Q(
    ("max_output_tokens__isnull", True), ("max_output_tokens__gte", 1), _connector="OR"
)


def blank_zero_output_caps(apps: Any, schema_editor: Any) -> None:
    """Each stored output cap of 0 becomes blank: no cap on a policy, the policy's value for a
    user's own (still a limit of theirs to inherit, not "unlimited"). Nothing else changes."""
    for name in ("Policy", "UserLimits"):
        model = apps.get_model("conversations", name)
        model.objects.filter(max_output_tokens=0).update(max_output_tokens=None)


class Migration(migrations.Migration):
    dependencies = [("conversations", "0029_a_time_zone_change_counts_the_periods_again")]

    operations = [
        # Rolled back, a blank stays blank: it means what the 0 was taken to mean.
        migrations.RunPython(blank_zero_output_caps, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="policy",
            name="max_output_tokens",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Cap on max_tokens per request (at least 1).",
                null=True,
                validators=[django.core.validators.MinValueValidator(1, message=MESSAGE)],
            ),
        ),
        migrations.AlterField(
            model_name="userlimits",
            name="max_output_tokens",
            field=models.PositiveIntegerField(
                blank=True,
                null=True,
                validators=[django.core.validators.MinValueValidator(1, message=MESSAGE)],
            ),
        ),
        migrations.AddConstraint(
            model_name="policy",
            constraint=models.CheckConstraint(
                condition=AT_LEAST_ONE,
                name="policy_max_output_tokens_at_least_one",
                violation_error_message=MESSAGE,
            ),
        ),
        migrations.AddConstraint(
            model_name="userlimits",
            constraint=models.CheckConstraint(
                condition=AT_LEAST_ONE,
                name="userlimits_max_output_tokens_at_least_one",
                violation_error_message=MESSAGE,
            ),
        ),
        migrations.RunSQL(ADMIT, reverse_sql=admit_before.ADMIT),
    ]
