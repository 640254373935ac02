"""The calls app's database gauges for `/metrics` (see tenants.metrics.register_gauge).

Both read only rows that are still moving — calls in progress, callbacks not yet settled — through the
indexes on `status`, so a scrape costs the same however many finished calls the database holds.
"""

from __future__ import annotations

from django.db.models import Count

from calls.models import Call, CallStatus, DeliveryStatus, WebhookDelivery
from tenants import metrics

IN_PROGRESS = (CallStatus.INITIATING, CallStatus.RINGING, CallStatus.ANSWERED)


def calls_in_progress() -> list[tuple[tuple[str, ...], float]]:
    counts = dict(Call.objects.filter(status__in=IN_PROGRESS).values_list("status").annotate(n=Count("id")))
    return [((status,), counts.get(status, 0)) for status in IN_PROGRESS]


def pending_deliveries() -> list[tuple[tuple[str, ...], float]]:
    return [((), WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).count())]


def register() -> None:
    metrics.register_gauge(
        "switchboard_calls_in_progress", "Calls not yet finished, by status", ["status"], calls_in_progress
    )
    metrics.register_gauge(
        "switchboard_webhook_deliveries_pending", "Callbacks waiting to be delivered or retried", [], pending_deliveries
    )
