"""The audit log no longer keeps the hashes of API keys and share links (``audit.SECRET_FIELDS``):
entries already written lose them from their before and after; nothing else in them changes."""

from django.db import migrations

FORGET_THE_HASHES = """
UPDATE conversations_auditentry
   SET before = CASE WHEN jsonb_typeof(before) = 'object' THEN before - 'hashed' ELSE before END,
       after = CASE WHEN jsonb_typeof(after) = 'object' THEN after - 'hashed' ELSE after END
 WHERE target_type IN ('apikey', 'sharelink')
   AND ((jsonb_typeof(before) = 'object' AND before ? 'hashed')
        OR (jsonb_typeof(after) = 'object' AND after ? 'hashed'))
"""


class Migration(migrations.Migration):
    dependencies = [("conversations", "0025_a_taken_back_call_holds_its_worst_case")]

    operations = [migrations.RunSQL(FORGET_THE_HASHES, reverse_sql=migrations.RunSQL.noop)]
