"""The ledger's cost holds what a call costs at the highest prices the registry accepts (it
held under a million dollars a call, and settlement past it failed). A wider precision at the
same scale: PostgreSQL changes the column without rewriting the table."""

from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0017_a_models_output_limit_fits_a_reservation"),
    ]

    operations = [
        migrations.AlterField(
            model_name="usagerecord",
            name="cost",
            field=models.DecimalField(decimal_places=8, default=Decimal("0"), max_digits=18),
        ),
    ]
