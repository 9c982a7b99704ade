"""A model's output limit fits a reservation in the ledger's token counts: a validator only,
no SQL."""

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0016_sign_in_failures"),
    ]

    operations = [
        migrations.AlterField(
            model_name="modelconfig",
            name="max_output_tokens",
            field=models.PositiveIntegerField(
                default=8192, validators=[django.core.validators.MaxValueValidator(10000000)]
            ),
        ),
    ]
