"""A usage chart with nothing to show names no peak: over an empty ledger the dashboard's cost
chart read "$1.0000" at its top and its token charts "1", a scale no call ever reached."""

from __future__ import annotations

import re

import pytest

from conversations.models import User
from tests.support import client_for

pytestmark = pytest.mark.django_db


def axis_labels(svg: str) -> list[str]:
    """The labels at the left of the plot (right-aligned: the y axis)."""
    return re.findall(r'<text[^>]*text-anchor="end"[^>]*>([^<]*)</text>', svg)


def test_the_charts_of_an_empty_ledger_name_only_zero(staff: User, alice: User) -> None:
    html = client_for(staff).get("/admin/usage/").content.decode()
    charts = re.findall(r'<svg[^>]*class="chart".*?</svg>', html, re.S)
    assert len(charts) == 3
    for chart in charts:
        assert axis_labels(chart) == ["0"]
    mine = client_for(alice).get("/usage/").content.decode()
    (chart,) = re.findall(r'<svg[^>]*class="chart".*?</svg>', mine, re.S)
    assert axis_labels(chart) == ["0"]


def test_an_empty_ledger_has_no_cache_hit_ratio(staff: User) -> None:
    """Nor a cache-hit ratio of "0%", as if every input had missed the cache."""
    html = client_for(staff).get("/admin/usage/").content.decode()
    totals = re.search(r'<p class="usage-totals">(.*?)</p>', html, re.S)
    assert totals
    assert "no input, no cache-hit ratio" in totals.group(1)
    assert "%" not in totals.group(1)
