"""Where the tokens went: the staff dashboard (inside the admin), its CSV export, and each
user's own usage page. Reads only; every number is a query over the ledger or the counters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.paginator import Paginator
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from conversations import charts, quota
from conversations.csv_export import stream_csv
from conversations.models import ModelConfig, UsageRecord, User
from conversations.templatetags.ratios import percent
from conversations.templatetags.usage_figures import spent_and_reserved

WARN_AT = 0.8


def _days(count: int) -> list[date]:
    today = timezone.localdate()
    return [today - timedelta(days=count - 1 - i) for i in range(count)]


def _int(value: str | None) -> int | None:
    # ASCII only: str.isdigit() is true of "²", which int() refuses.
    return int(value) if value and value.isascii() and value.isdigit() else None


def _chosen(request: HttpRequest) -> dict[str, Any]:
    """The dashboard's filters, as the query string gives them."""
    span = 90 if request.GET.get("days") == "90" else 30
    return {
        "days": span,
        "day_list": _days(span),
        "user": _int(request.GET.get("user")),
        "group": _int(request.GET.get("group")),
        "model": _int(request.GET.get("model")),
        "purpose": request.GET.get("purpose")
        if request.GET.get("purpose") in UsageRecord.Purpose.values
        else "",
    }


def _scoped(chosen: dict[str, Any]) -> QuerySet[UsageRecord]:
    """The ledger under the filters, at any time."""
    records = UsageRecord.objects.all()
    if chosen["user"]:
        records = records.filter(user_id=chosen["user"])
    if chosen["group"]:
        records = records.filter(user__groups=chosen["group"])
    if chosen["model"]:
        records = records.filter(model_id=chosen["model"])
    if chosen["purpose"]:
        records = records.filter(purpose=chosen["purpose"])
    return records


def _window_start(chosen: dict[str, Any]) -> datetime:
    return timezone.make_aware(datetime.combine(chosen["day_list"][0], time.min))


def _filtered(request: HttpRequest) -> tuple[QuerySet[UsageRecord], dict[str, Any]]:
    """The ledger under the filters, over the last 30 or 90 days."""
    chosen = _chosen(request)
    return _scoped(chosen).filter(created_at__gte=_window_start(chosen)), chosen


def _tokens(record_sum: dict[str, Any], key: str) -> int:
    return int(record_sum.get(key) or 0)


def _settled(records: QuerySet[UsageRecord]) -> QuerySet[UsageRecord]:
    """The calls that have ended. A running call's row holds its worst-case reservation and
    its prompt estimate (as cache misses), not usage: charts, totals and ratios leave it out."""
    return records.filter(state=UsageRecord.State.SETTLED)


USERS_PER_PAGE = 50
TOP_USERS = 20


def _with_limits(
    user: User, period: Mapping[str, Any], summary: Mapping[str, Any]
) -> dict[str, Any]:
    """A user's row: the period's calls, tokens and cost, and today, this month and what is
    left now (``summary``: :func:`quota.usage_summary`, from the running totals)."""
    return {
        "user_id": user.pk,
        "user__username": user.username,
        "calls": period.get("calls", 0),
        "tokens": period.get("tokens") or 0,
        "cost": period.get("cost") or 0,
        "today": summary["today"],
        "month": summary["month"],
        "remaining": summary["remaining"],
        "suspended": summary["suspended"],
        "no_model": summary["no_model"],
        "deactivated": summary["deactivated"],
        "source": summary["source"],
    }


def _user_tables(
    request: HttpRequest, records: QuerySet[UsageRecord], chosen: dict[str, Any]
) -> dict[str, Any]:
    """The period's top users, and every user (of the chosen user or group), a page at a time."""
    per_user = {
        row["user_id"]: row
        # Accounts deleted since count in every total, not among the users.
        for row in records.filter(user__isnull=False)
        .values("user_id", "user__username")
        .annotate(tokens=Sum("total_tokens"), cost=Sum("cost"), calls=Count("id"))
    }
    top = sorted(per_user.values(), key=lambda row: row["tokens"] or 0, reverse=True)[:TOP_USERS]
    everyone = User.objects.order_by("username")
    if chosen["user"]:
        everyone = everyone.filter(pk=chosen["user"])
    if chosen["group"]:
        everyone = everyone.filter(groups=chosen["group"])
    page = Paginator(everyone.only("id", "username", "is_active"), USERS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    top_accounts = User.objects.only("id", "username", "is_active").in_bulk(
        [r["user_id"] for r in top]
    )
    # Limits and running totals of everyone shown, in a few queries (not a few per user).
    summaries = quota.usage_summaries([*top_accounts.values(), *page])
    return {
        "top_users": [
            _with_limits(top_accounts[r["user_id"]], r, summaries[r["user_id"]]) for r in top
        ],
        "users_page": page,
        "users": [
            _with_limits(user, per_user.get(user.pk, {}), summaries[user.pk]) for user in page
        ],
        "query_without_page": query.urlencode(),
        # Said under the users: the totals count them, and no row of the table does.
        "deleted_accounts": records.filter(user__isnull=True).aggregate(
            tokens=Sum("total_tokens"), cost=Sum("cost"), calls=Count("id")
        ),
    }


def _model_rows(chosen: dict[str, Any]) -> list[dict[str, Any]]:
    """Per model: the period's calls, tokens, cost and cache-hit ratio, and today's and this
    month's tokens and cost (this month may begin before a 30-day period)."""
    periods = quota.periods_at(timezone.now())
    window = _window_start(chosen)
    in_window = Q(created_at__gte=window)
    today, month = Q(created_at__gte=periods.day), Q(created_at__gte=periods.month)
    models = (
        _settled(_scoped(chosen))
        .filter(created_at__gte=min(window, periods.month))
        .values("model__name")
        .annotate(
            calls=Count("id", filter=in_window),
            tokens=Sum("total_tokens", filter=in_window),
            hit=Sum("cache_hit_tokens", filter=in_window),
            miss=Sum("cache_miss_tokens", filter=in_window),
            # Not named "cost": the next ones would sum this annotation, not the column.
            usd=Sum("cost", filter=in_window),
            today_tokens=Sum("total_tokens", filter=today),
            today_usd=Sum("cost", filter=today),
            month_tokens=Sum("total_tokens", filter=month),
            month_usd=Sum("cost", filter=month),
        )
        .order_by(F("tokens").desc(nulls_last=True), "model__name")
    )
    return [
        {
            **m,
            # None: no input in the period (the calls before it), not "0%", all misses.
            "hit_ratio": (m["hit"] or 0) / ((m["hit"] or 0) + (m["miss"] or 0))
            if (m["hit"] or 0) + (m["miss"] or 0)
            else None,
        }
        for m in models
    ]


def _chart(
    name: str, days: list[date], series: Mapping[str, Sequence[float]], title: str, **options: Any
) -> dict[str, str]:
    """A chart of the dashboard: its id, the title shown above it, and the chart."""
    return {
        "id": name,
        "title": title,
        "svg": charts.stacked_bars(days, series, title=title, **options),
    }


def _gone(chosen: dict[str, Any]) -> dict[str, int]:
    """The filters that name a user, group or model no longer there (a bookmark's, after a
    delete): the page filtered by it showed "all" in its select, over no usage at all."""
    rows = {"user": User.objects, "group": Group.objects, "model": ModelConfig.objects}
    return {
        name: chosen[name]
        for name, manager in rows.items()
        if chosen[name] and not manager.filter(pk=chosen[name]).exists()
    }


def dashboard(request: HttpRequest) -> HttpResponse:
    """Staff only (wrapped by admin_view in urls): charts, tables, filters."""
    filtered, chosen = _filtered(request)
    records = _settled(filtered)
    running = filtered.filter(state=UsageRecord.State.RESERVED).aggregate(
        calls=Count("id"), reserved=Sum("reserved_tokens")
    )
    days: list[date] = chosen["day_list"]
    index = {day: i for i, day in enumerate(days)}
    per_day_model = (
        records.annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "model__name")
        .annotate(
            tokens=Sum("total_tokens"),
            hit=Sum("cache_hit_tokens"),
            miss=Sum("cache_miss_tokens"),
            out=Sum("completion_tokens"),
            cost=Sum("cost"),
        )
    )
    tokens_by_model: dict[str, list[float]] = {}
    cost_by_model: dict[str, list[float]] = {}
    cache: dict[str, list[float]] = {
        "cache hit input": [0] * len(days),
        "cache miss input": [0] * len(days),
        "output": [0] * len(days),
    }
    for row in per_day_model:
        i = index.get(row["day"])
        if i is None:
            continue
        tokens_by_model.setdefault(row["model__name"], [0] * len(days))[i] += row["tokens"] or 0
        cost_by_model.setdefault(row["model__name"], [0.0] * len(days))[i] += float(
            row["cost"] or 0
        )
        cache["cache hit input"][i] += row["hit"] or 0
        cache["cache miss input"][i] += row["miss"] or 0
        cache["output"][i] += row["out"] or 0
    totals = records.aggregate(
        tokens=Sum("total_tokens"),
        hit=Sum("cache_hit_tokens"),
        miss=Sum("cache_miss_tokens"),
        cost=Sum("cost"),
        calls=Count("id"),
    )
    hit, miss = _tokens(totals, "hit"), _tokens(totals, "miss")
    nothing: dict[str, list[float]] = {"no usage": [0] * len(days)}
    span = f"last {len(days)} days"
    context = {
        # The admin's own header, user links and sidebar, as on its other pages.
        **admin.site.each_context(request),
        "title": "Usage",
        "chosen": chosen,
        # Each under its title, shown (the SVG's own title is only a tooltip): three blank
        # charts at first sight, told apart by their legends at best.
        "charts": [
            _chart("tokens", days, tokens_by_model or nothing, f"Tokens per day by model, {span}"),
            _chart(
                "cost",
                days,
                cost_by_model or nothing,
                f"Cost per day by model, {span}",
                unit=charts.NO_UNIT,
                number=charts.dollars,
            ),
            _chart(
                "cache",
                days,
                cache,
                f"Input tokens from cache (hit) and not (miss), and output tokens, per day, {span}",
            ),
        ],
        "totals": totals,
        "running": {"calls": running["calls"], "reserved": _tokens(running, "reserved")},
        "cost_total": sum(sum(costs) for costs in cost_by_model.values()),
        # None: no input at all (an empty ledger), not "0%", as if every input had missed.
        "hit_ratio": hit / (hit + miss) if hit + miss else None,
        **_user_tables(request, records, chosen),
        "models": _model_rows(chosen),
        "all_users": User.objects.order_by("username").only("id", "username"),
        "all_groups": Group.objects.order_by("name"),
        "all_models": ModelConfig.objects.order_by("name"),
        "gone": _gone(chosen),
        "purposes": UsageRecord.Purpose.choices,
    }
    return render(request, "usage/dashboard.html", context)


LEDGER_COLUMNS = [
    "created_at",
    "user",
    "model",
    "purpose",
    "state",
    "outcome",
    "prompt_tokens",
    "cache_hit_tokens",
    "cache_miss_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "total_tokens",
    "reserved_tokens",
    "cost_usd",
    "estimated",
    "conversation",
    "api_key",
]


def _ledger_columns(r: UsageRecord) -> list[Any]:
    return [
        r.created_at,
        r.account_name,
        r.model.name,
        r.purpose,
        r.state,
        r.outcome,
        r.prompt_tokens,
        r.cache_hit_tokens,
        r.cache_miss_tokens,
        r.completion_tokens,
        r.reasoning_tokens,
        r.total_tokens,
        r.reserved_tokens,
        r.cost,
        r.estimated,
        r.conversation_id or "",
        r.api_key.prefix if r.api_key else "",
    ]


def export_csv(request: HttpRequest) -> HttpResponseBase:
    """The ledger under the dashboard's filters, one row per upstream call, sent as it is
    read (:func:`csv_export.stream_csv`)."""
    records, _ = _filtered(request)
    return stream_csv(
        "usage.csv",
        LEDGER_COLUMNS,
        records.select_related("user", "model", "api_key").order_by("created_at", "pk"),
        _ledger_columns,
    )


PERIOD_LABELS = {"today": "today's", "month": "this month's"}
PERIOD_NAMES = {"today": "today", "month": "this month"}


def _warning(summary: dict[str, Any]) -> str:
    """The most severe of the day and the month: a spent period (the one that holds the
    longest, as refusals name it), else the one nearest its limit from 80% on. What running
    replies hold in reserve counts (the next request may not fit beside it), and is said
    apart from what was spent: what they do not use comes back when they end."""
    if summary["exhausted"]:
        period = summary["exhausted"]
        figures = summary[period]
        if figures["limit"] == 0:  # a limit all the same: nothing may be spent
            return f"Your limit for {PERIOD_NAMES[period]} is 0 tokens."
        if not figures["reserved"]:
            return f"You have used all of {PERIOD_LABELS[period]} {figures['limit']:,} tokens."
        return (
            f"All of {PERIOD_LABELS[period]} {figures['limit']:,} tokens are used or reserved: "
            f"{spent_and_reserved(figures)}."
        )
    shares = {
        period: summary[period]["used"] / summary[period]["limit"]
        for period in PERIOD_LABELS
        if summary[period]["limit"]  # None: no limit; 0: exhausted, answered above
    }
    # Of two at the same share, the month: it resets later.
    period = max(shares, key=lambda p: (shares[p], p == "month"), default=None)
    if period is None or shares[period] < WARN_AT:
        return ""
    figures = summary[period]
    # Read as the dashboard reads a ratio: "{:.0%}" rounded 999,996 of 1,000,000 up to "100%"
    # with tokens left. (A limit past 2**53 tokens could still round the float itself to 1.)
    if not figures["reserved"]:
        return (
            f"You have used {percent(shares[period])} of {PERIOD_LABELS[period]} "
            f"{figures['limit']:,} tokens."
        )
    return (
        f"{percent(shares[period])} of {PERIOD_LABELS[period]} {figures['limit']:,} tokens "
        f"is used or reserved: {spent_and_reserved(figures)}."
    )


MY_CHART_TITLE = "Your tokens per day, last 30 days"


@login_required
def my_usage(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    limits = quota.limits_for(user)
    summary = quota.usage_summary(user, limits)
    # "No daily limit" read as "chat freely" to a user whose policy leaves them no model.
    no_model = "" if quota.usable_models(limits) else quota.no_model_available(user)
    days = _days(30)
    index = {day: i for i, day in enumerate(days)}
    series: dict[str, list[int]] = {}
    start = timezone.make_aware(datetime.combine(days[0], time.min))
    rows = (
        _settled(UsageRecord.objects.filter(user=user, created_at__gte=start))
        .annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", "model__name")
        .annotate(tokens=Sum("total_tokens"))
    )
    for row in rows:
        if row["day"] in index:
            series.setdefault(row["model__name"], [0] * len(days))[index[row["day"]]] += (
                row["tokens"] or 0
            )
    return render(
        request,
        "usage/mine.html",
        {
            "summary": summary,
            "no_model": no_model,
            "warning": _warning(summary),
            "chart_title": MY_CHART_TITLE,
            "chart": charts.stacked_bars(
                days, series or {"no usage yet": [0] * len(days)}, title=MY_CHART_TITLE
            ),
        },
    )


@login_required
def summary_json(request: HttpRequest) -> JsonResponse:
    """For the composer: what is left, and a warning at 80% and 100%."""
    summary = quota.usage_summary(request.user)  # type: ignore[arg-type]
    return JsonResponse({**summary, "warning": _warning(summary)})
