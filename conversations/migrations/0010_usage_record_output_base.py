"""A continuation's ledger row remembers how much text its reply already held when the call
was admitted (``output_base_chars``), so that an estimate of the call's output (the reaper's,
when its process died) counts only the text this call added. ``db_default``: the row is
inserted by ``usage_admit`` (SQL), which leaves the column to its default."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0009_usage_account"),
    ]

    operations = [
        migrations.AddField(
            model_name="usagerecord",
            name="output_base_chars",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
    ]
