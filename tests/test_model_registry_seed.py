from __future__ import annotations

from decimal import Decimal

import pytest

from conversations.models import ModelConfig


@pytest.mark.django_db
def test_the_registry_is_seeded_with_the_reference_names_on_current_upstream_ids() -> None:
    rows = {row.name: row for row in ModelConfig.objects.all()}
    assert set(rows) >= {"deepseek-chat", "deepseek-reasoner"}
    chat, reasoner = rows["deepseek-chat"], rows["deepseek-reasoner"]
    assert (chat.upstream_model, chat.thinking) == ("deepseek-v4-flash", False)
    assert (reasoner.upstream_model, reasoner.thinking) == ("deepseek-v4-flash", True)
    for row in (chat, reasoner):
        assert row.enabled
        assert row.max_output_tokens == 8192
        assert row.default_max_tokens == 4096
        assert row.context_window > row.max_output_tokens
        assert row.price_input_cache_miss == Decimal("0.14")
        assert row.price_input_cache_hit < row.price_input_cache_miss < row.price_output


@pytest.mark.django_db
def test_the_upstream_id_is_editable_data() -> None:
    ModelConfig.objects.filter(name="deepseek-chat").update(upstream_model="deepseek-flash")
    assert ModelConfig.objects.get(name="deepseek-chat").upstream_model == "deepseek-flash"
