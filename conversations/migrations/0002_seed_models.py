"""Seed the registry with the two names of the API reference.

Since 2026-07-24 the upstream only answers its V4 ids, so both names map to
``deepseek-v4-flash`` and differ by thinking mode. These rows are admin data: edit them, don't
edit this migration. Prices are v4-flash's of April 2026 (USD per 1M tokens).
"""

from decimal import Decimal

from django.db import migrations

SEED = [
    {
        "name": "deepseek-chat",
        "display_name": "DeepSeek Chat",
        "upstream_model": "deepseek-v4-flash",
        "thinking": False,
        "supports_tools": True,
        "supports_json": True,
        "supports_logprobs": True,
        "sort_order": 1,
    },
    {
        "name": "deepseek-reasoner",
        "display_name": "DeepSeek Reasoner",
        "upstream_model": "deepseek-v4-flash",
        "thinking": True,
        "supports_tools": True,
        "supports_json": True,
        # The R1/V3.x docs call logprobs in thinking mode an error; V4 is unconfirmed.
        "supports_logprobs": False,
        "sort_order": 2,
    },
]


def seed(apps, schema_editor):
    ModelConfig = apps.get_model("conversations", "ModelConfig")
    for row in SEED:
        ModelConfig.objects.update_or_create(
            name=row["name"],
            defaults={
                **row,
                "reasoning_passback": "send",
                "context_window": 1048576,
                "max_output_tokens": 8192,
                "default_max_tokens": 4096,
                "price_input_cache_hit": Decimal("0.0028"),
                "price_input_cache_miss": Decimal("0.14"),
                "price_output": Decimal("0.28"),
                "enabled": True,
            },
        )


def unseed(apps, schema_editor):
    ModelConfig = apps.get_model("conversations", "ModelConfig")
    ModelConfig.objects.filter(name__in=[row["name"] for row in SEED], conversations=None).delete()


class Migration(migrations.Migration):
    dependencies = [("conversations", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
