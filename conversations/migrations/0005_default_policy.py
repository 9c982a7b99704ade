"""A default policy, so limits exist from the first run (blank fields are unlimited)."""

from django.db import migrations


def create_default(apps, schema_editor):
    Policy = apps.get_model("conversations", "Policy")
    if not Policy.objects.filter(is_default=True).exists():
        Policy.objects.create(
            name="Default",
            is_default=True,
            all_models=True,
            tokens_per_day=1_000_000,
            tokens_per_month=20_000_000,
            max_output_tokens=8192,
            requests_per_minute=30,
            concurrent_streams=4,
        )


class Migration(migrations.Migration):
    dependencies = [("conversations", "0004_limits_keys_sharing")]
    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
