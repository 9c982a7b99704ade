"""A period's tokens told apart: what ended calls spent and what running ones hold in reserve
(the running totals count both against the limit; the reserve comes back when they end)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import template

register = template.Library()


@register.filter
def spent_and_reserved(figures: Mapping[str, Any]) -> str:
    """ "2,553 spent, 2,626 reserved by 1 running reply", of a period of ``usage_summary``."""
    replies = "reply" if figures["running"] == 1 else "replies"
    return (
        f"{figures['spent']:,} spent, {figures['reserved']:,} reserved by "
        f"{figures['running']:,} running {replies}"
    )
