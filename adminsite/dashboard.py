"""The per-tenant dashboard's figures (SPEC §17): one bounded query per chart, over indexed columns.

Every query filters on the tenant and a recent `created_at` window (indexes `(tenant, -created_at)` on
calls, API call logs and webhook deliveries), groups in the database and returns a few rows per chart,
so the page costs the same whether a tenant made ten calls or ten million. Campaigns' progress reads
only the rows of the tenant's running campaigns (at most `MAX_CAMPAIGNS` of them, 100,000 rows each at
most), counted per status on the rows' `(campaign, status, …)` index.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Sum, Value, When, Window
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce, RowNumber, TruncDate
from django.utils import timezone

from calls.models import TERMINAL_STATUSES, Call, CallStatus, DeliveryStatus, WebhookDelivery
from campaigns.models import Campaign, CampaignStatus, RowStatus
from integrations.models import ApiCallLog
from integrations.models import CallStatus as ExecutionStatus
from tenants.models import Tenant
from tenants.scoping import for_tenant

CALL_DAYS = 14
API_HOURS = 24
MAX_CONNECTIONS = 12  # the busiest connections are drawn (a tenant may have hundreds)
MAX_CAMPAIGNS = 10  # the most recently created running campaigns are drawn
# Finished rows first, then the ones still to go: the bar fills from the left as the campaign advances.
ROW_ORDER = (RowStatus.COMPLETED, RowStatus.FAILED, RowStatus.SKIPPED, RowStatus.CALLING, RowStatus.PENDING)
DONE = (RowStatus.COMPLETED, RowStatus.FAILED, RowStatus.SKIPPED)


@dataclass
class ConnectionLatency:
    name: str
    requests: int
    errors: int
    p50_ms: int | None = None
    p95_ms: int | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass
class CampaignProgress:
    name: str
    rows: dict[str, int]  # row status → count, every status in ROW_ORDER

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    @property
    def done(self) -> int:
        return sum(self.rows[status] for status in DONE)

    @property
    def share_done(self) -> float:
        return self.done / self.total if self.total else 0.0


@dataclass
class Dashboard:
    tenant: Tenant
    days: list[date]
    calls_by_day: dict[str, list[int]]  # status → count per day (same order as `days`)
    outcomes: list[tuple[str, int]]  # outcome label → calls, most frequent first
    connections: list[ConnectionLatency]
    deliveries: dict[str, int]  # delivery status → count
    campaigns: list[CampaignProgress] = field(default_factory=list)  # running ones, newest first

    @property
    def delivery_success_rate(self) -> float | None:
        done = self.deliveries.get(DeliveryStatus.DELIVERED, 0) + self.deliveries.get(DeliveryStatus.FAILED, 0)
        return self.deliveries.get(DeliveryStatus.DELIVERED, 0) / done if done else None


def build(tenant: Tenant, *, now: datetime | None = None) -> Dashboard:
    """Everything the dashboard draws for `tenant`, as of `now`."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    days = [today - timedelta(days=offset) for offset in range(CALL_DAYS - 1, -1, -1)]
    since = timezone.make_aware(datetime.combine(days[0], datetime.min.time()))
    return Dashboard(
        tenant=tenant,
        days=days,
        calls_by_day=calls_per_day(tenant, days, since),
        outcomes=outcome_distribution(tenant, since),
        connections=api_latency(tenant, now - timedelta(hours=API_HOURS)),
        deliveries=delivery_outcomes(tenant, since),
        campaigns=campaign_progress(tenant),
    )


def calls_per_day(tenant: Tenant, days: list[date], since: datetime) -> dict[str, list[int]]:
    """Calls created per day by status (statuses with no call in the window are left out)."""
    rows = (
        for_tenant(Call, tenant)
        .filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    index = {day: position for position, day in enumerate(days)}
    series: dict[str, list[int]] = {}
    for row in rows:
        if row["day"] in index:
            series.setdefault(row["status"], [0] * len(days))[index[row["day"]]] += row["n"]
    order = list(CallStatus.values)
    return dict(sorted(series.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


def outcome_distribution(tenant: Tenant, since: datetime) -> list[tuple[str, int]]:
    """Finished calls by outcome: the agent's disposition when it recorded one, else how the call ended."""
    rows = (
        for_tenant(Call, tenant)
        .filter(created_at__gte=since, status__in=TERMINAL_STATUSES)
        .annotate(disposition=KT("call_outcome__disposition"))
        .values("status", "disposition")
        .annotate(n=Count("id"))
        .order_by()
    )
    totals: dict[str, int] = {}
    for row in rows:
        label = row["disposition"] or (
            "completed (no outcome)" if row["status"] == CallStatus.COMPLETED else str(row["status"])
        )
        totals[label] = totals.get(label, 0) + row["n"]
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def api_latency(tenant: Tenant, since: datetime) -> list[ConnectionLatency]:
    """Per connection over the window: requests, errors, and the exact p50/p95 of `duration_ms`.

    One query: window functions rank each connection's logs by duration and keep only the two rows at
    the 50th and 95th percentile ranks (nearest-rank method), so at most two rows per connection come back.
    """
    partition = [F("endpoint__connection_id")]
    failed = Case(When(~Q(status=ExecutionStatus.SUCCESS), then=1), default=0, output_field=IntegerField())
    total = Window(Count("id"), partition_by=partition)
    rows = (
        for_tenant(ApiCallLog, tenant)
        .filter(created_at__gte=since)
        .annotate(
            connection_name=Coalesce(F("endpoint__connection__name"), Value("(deleted endpoints)")),
            rank=Window(RowNumber(), partition_by=partition, order_by=[F("duration_ms").asc(), F("id").asc()]),
            total=total,
            errors=Window(Sum(failed), partition_by=partition),
            # ceil(total * p / 100) in integer arithmetic, the same on SQLite and PostgreSQL.
            p50_at=(total * 50 + 99) / 100,
            p95_at=(total * 95 + 99) / 100,
        )
        .filter(Q(rank=F("p50_at")) | Q(rank=F("p95_at")))
        .values("connection_name", "rank", "total", "errors", "p50_at", "p95_at", "duration_ms")
        .order_by()
    )
    found: dict[str, ConnectionLatency] = {}
    for row in rows:
        item = found.setdefault(row["connection_name"], ConnectionLatency(row["connection_name"], row["total"], 0))
        item.errors = row["errors"] or 0
        if row["rank"] == row["p50_at"]:
            item.p50_ms = row["duration_ms"]
        if row["rank"] == row["p95_at"]:
            item.p95_ms = row["duration_ms"]
    ranked = sorted(found.values(), key=lambda item: (-item.requests, item.name))
    return ranked[:MAX_CONNECTIONS]


def delivery_outcomes(tenant: Tenant, since: datetime) -> dict[str, int]:
    """Call notifications created in the window, by delivery status."""
    rows = (
        for_tenant(WebhookDelivery, tenant)
        .filter(created_at__gte=since)
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts = {row["status"]: row["n"] for row in rows}
    return {status: counts.get(status, 0) for status in DeliveryStatus.values}


def campaign_progress(tenant: Tenant) -> list[CampaignProgress]:
    """The tenant's running campaigns (the `MAX_CAMPAIGNS` newest), each with its rows by status.

    One query: the campaigns picked in a subquery, left-joined to their rows and grouped by campaign and
    row status, so a running campaign without rows is drawn too (empty).
    """
    found: dict[object, CampaignProgress] = {}
    for row in campaign_progress_query(tenant):
        item = found.setdefault(row["pk"], CampaignProgress(row["name"], dict.fromkeys(ROW_ORDER, 0)))
        if row["rows__status"] in item.rows:
            item.rows[row["rows__status"]] += row["n"]
    return list(found.values())


def campaign_progress_query(tenant: Tenant) -> QuerySet[Any, Any]:
    running = for_tenant(Campaign, tenant).filter(status=CampaignStatus.RUNNING).order_by("-created_at", "-id")
    return (
        for_tenant(Campaign, tenant)
        .filter(pk__in=running.values("pk")[:MAX_CAMPAIGNS])
        .values("pk", "name", "created_at", "rows__status")
        # COUNT(rows.status), not COUNT(rows.id): the index holds the status, and a campaign without
        # rows counts 0.
        .annotate(n=Count("rows__status"))
        .order_by("-created_at", "-pk")
    )
