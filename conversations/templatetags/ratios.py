"""A ratio read as a percentage that never claims more than it is: whole where it is exact,
else to a tenth, and never rounded up to 100 % or down to 0 % (a cache-hit ratio of 99.6 % is
not "every input came from the cache")."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def percent(ratio: float) -> str:
    value = ratio * 100
    if value == int(value):
        return f"{int(value)}%"
    shown = f"{value:.1f}"
    if shown == "100.0":
        return "99.9%"
    if shown == "0.0":
        return "<0.1%"
    return f"{shown}%"
