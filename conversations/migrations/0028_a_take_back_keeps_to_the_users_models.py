"""A call the reaper settled while its task lived is taken back only while its model is still
enabled and allowed to the user, as admission would take it.

``usage_take_back`` (0027) refused an account that may no longer send, but not a model the
admin disabled, or took from the user's policy, during the outage: the reply was taken back and
ran to its end on a model the user may no longer use. Now the function answers false for it
too (``usage_limits``' ``model_enabled`` and ``model_allowed``, as ``usage_admit`` reads them):
the row stays as the reaper left it, and its task gives way (its call settled to what it used).
"""

from importlib import import_module

from django.db import migrations

before = import_module(
    "conversations.migrations.0027_a_take_back_keeps_the_users_streams_and_suspension"
)

_ACCOUNT_CHECK = """
    -- Suspended or deactivated while the worker was cut off: admission would refuse the call.
    IF l.is_active IS NOT TRUE OR l.suspended THEN
"""
assert before.TAKE_BACK.count(_ACCOUNT_CHECK) == 1
TAKE_BACK = before.TAKE_BACK.replace(
    _ACCOUNT_CHECK,
    """
    -- Suspended or deactivated while the worker was cut off, or its model disabled or taken
    -- from the user's policy: admission would refuse the call.
    IF l.is_active IS NOT TRUE OR l.suspended OR l.model_enabled IS NOT TRUE
       OR l.model_allowed IS NOT TRUE THEN
""",
)


class Migration(migrations.Migration):
    dependencies = [("conversations", "0027_a_take_back_keeps_the_users_streams_and_suspension")]

    operations = [migrations.RunSQL(TAKE_BACK, reverse_sql=before.TAKE_BACK)]
