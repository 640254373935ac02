"""The admin's first page: which tenant's dashboard to show, and its charts with the numbers beside them."""

from __future__ import annotations

from typing import Any

from django.utils.formats import date_format

from adminsite import charts, dashboard
from tenants import scoping
from tenants.models import Tenant

MAX_CHOICES = 200  # the selector lists this many; an operator reaches the others by ?tenant=<slug>


def chosen_tenant(request) -> tuple[Tenant | None, list[Tenant]]:
    """The tenant named by `?tenant=<slug>` among the user's (else their first) and the ones to choose from.

    An unknown or foreign slug falls back to the first tenant: another tenant's name is never confirmed.
    """
    visible = scoping.tenants_for_user(request.user).order_by("name")
    choices = list(visible[:MAX_CHOICES])
    wanted = request.GET.get("tenant", "")
    chosen = next((t for t in choices if t.slug == wanted), None)
    if chosen is None and wanted and len(choices) == MAX_CHOICES:
        chosen = visible.filter(slug=wanted).first()  # an operator's tenant beyond the list
    return chosen or (choices[0] if choices else None), choices


def context(request) -> dict[str, Any]:
    tenant, tenants = chosen_tenant(request)
    if tenant is None:
        return {"dashboard": None}
    board = dashboard.build(tenant)
    return {
        "dashboard": board,
        "dashboard_tenants": tenants if len(tenants) > 1 else [],
        "charts": _charts(board),
        "call_totals": [(status, sum(values)) for status, values in board.calls_by_day.items()],
        "latency_rows": [
            {
                "name": c.name,
                "requests": c.requests,
                "p50": c.p50_ms,
                "p95": c.p95_ms,
                "error_rate": f"{c.error_rate:.1%}",
            }
            for c in board.connections
        ],
        "delivery_rate": None if board.delivery_success_rate is None else f"{board.delivery_success_rate:.1%}",
        "campaign_statuses": list(dashboard.ROW_ORDER),
        "campaign_rows": [{"name": c.name, "counts": list(c.rows.values()), "done": _done(c)} for c in board.campaigns],
    }


def _done(progress: dashboard.CampaignProgress) -> str:
    return f"{progress.done:,} of {progress.total:,} ({progress.share_done:.0%})"


def _charts(board: dashboard.Dashboard) -> dict[str, Any]:
    days = [date_format(day, "M j") for day in board.days]
    drawn: dict[str, Any] = {}
    if board.calls_by_day:
        drawn["calls"] = charts.stacked_columns(days, board.calls_by_day, label="Calls per day by status")
    if board.outcomes:
        rows = [(name, count, str(count)) for name, count in board.outcomes]
        drawn["outcomes"] = charts.horizontal_bars(rows, label="Call outcomes")
    if board.connections:
        latency = [
            (c.name, c.p50_ms or 0, c.p95_ms or 0, f"p50 {c.p50_ms} ms · p95 {c.p95_ms} ms · {c.error_rate:.1%} errors")
            for c in board.connections
        ]
        drawn["latency"] = charts.latency_bars(latency, label="Outgoing API latency per connection")
        volume = [(c.name, c.requests, f"{c.requests} calls, {c.errors} failed") for c in board.connections]
        drawn["volume"] = charts.horizontal_bars(
            volume, label="Outgoing API calls per connection", color_by_label=False
        )
    if any(board.deliveries.values()):
        drawn["deliveries"] = charts.share_bar(list(board.deliveries.items()), label="Webhook delivery outcomes")
    if board.campaigns:
        progress = [(c.name, c.rows, f"{_done(c)} done") for c in board.campaigns]
        drawn["campaigns"] = charts.progress_bars(progress, label="Running campaigns' progress")
    return drawn
