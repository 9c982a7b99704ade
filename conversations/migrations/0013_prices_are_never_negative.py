"""Prices (the model's, and its dated ones) are never negative: a validator only, no SQL."""

from decimal import Decimal

import django.core.validators
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0012_title_calls_hold_no_stream"),
    ]

    operations = [
        migrations.AlterField(
            model_name="modelconfig",
            name="price_input_cache_hit",
            field=models.DecimalField(
                decimal_places=4,
                default=Decimal("0"),
                max_digits=10,
                validators=[django.core.validators.MinValueValidator(Decimal("0"))],
            ),
        ),
        migrations.AlterField(
            model_name="modelconfig",
            name="price_input_cache_miss",
            field=models.DecimalField(
                decimal_places=4,
                default=Decimal("0"),
                max_digits=10,
                validators=[django.core.validators.MinValueValidator(Decimal("0"))],
            ),
        ),
        migrations.AlterField(
            model_name="modelconfig",
            name="price_output",
            field=models.DecimalField(
                decimal_places=4,
                default=Decimal("0"),
                max_digits=10,
                validators=[django.core.validators.MinValueValidator(Decimal("0"))],
            ),
        ),
        migrations.AlterField(
            model_name="modelprice",
            name="input_cache_hit",
            field=models.DecimalField(
                decimal_places=4,
                max_digits=10,
                validators=[django.core.validators.MinValueValidator(Decimal("0"))],
            ),
        ),
        migrations.AlterField(
            model_name="modelprice",
            name="input_cache_miss",
            field=models.DecimalField(
                decimal_places=4,
                max_digits=10,
                validators=[django.core.validators.MinValueValidator(Decimal("0"))],
            ),
        ),
        migrations.AlterField(
            model_name="modelprice",
            name="output",
            field=models.DecimalField(
                decimal_places=4,
                max_digits=10,
                validators=[django.core.validators.MinValueValidator(Decimal("0"))],
            ),
        ),
    ]
