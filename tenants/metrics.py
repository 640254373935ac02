"""Prometheus metrics (SPEC §17): what every process counts, and the `/metrics` exposition.

Counters and histograms are recorded where the work happens — the request middleware, the executor,
the call-event service, the webhook sender and Celery's task signals — through the small functions
below, so no caller touches prometheus-client directly. prometheus-client runs in multiprocess mode
(`PROMETHEUS_MULTIPROC_DIR`, set by the settings before the library is first imported): each gunicorn
worker and each Celery process writes its own memory-mapped files there, and `/metrics` on any web
process of that host sums them all.

Gauges about the database (calls in progress, campaign rows by status) are not stored in files: each
is one bounded query run at scrape time. Apps add theirs with `register_gauge()` (the campaigns app
registers its row counts this way), so `tenants` never imports the apps above it.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

# Web requests are mostly milliseconds; outgoing calls and callbacks wait on someone else's server.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTGOING_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
QUEUE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0)

HTTP_REQUESTS = Counter(
    "switchboard_http_requests",
    "HTTP requests answered, by route pattern, method and status",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "switchboard_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route", "method"],
    buckets=HTTP_BUCKETS,
)
OUTGOING = Counter(
    "switchboard_outgoing_requests",
    "Endpoint executions (all attempts of one call together), by tenant, connection id and result status",
    ["tenant", "connection", "status"],
)
OUTGOING_LATENCY = Histogram(
    "switchboard_outgoing_request_duration_seconds",
    "Duration of one endpoint execution, retries included",
    ["tenant", "connection"],
    buckets=OUTGOING_BUCKETS,
)
CALL_STATUSES = Counter("switchboard_calls", "Calls that reached each status (created ones included)", ["status"])
WEBHOOK_ATTEMPTS = Counter(
    "switchboard_webhook_attempts",
    "Callback delivery attempts by outcome: delivered, retrying (failed, another attempt scheduled), failed (final)",
    ["outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "switchboard_webhook_attempt_duration_seconds", "Duration of one callback attempt", buckets=OUTGOING_BUCKETS
)
TASK_QUEUE_DELAY = Histogram(
    "switchboard_task_queue_delay_seconds",
    "Time a Celery task waited between being due (sent, or its ETA) and starting",
    ["task"],
    buckets=QUEUE_BUCKETS,
)


def observe_http(route: str, method: str, status: int, seconds: float) -> None:
    HTTP_REQUESTS.labels(route, method, str(status)).inc()
    HTTP_LATENCY.labels(route, method).observe(seconds)


def observe_execution(tenant: str, connection: str, status: str, seconds: float) -> None:
    OUTGOING.labels(tenant, connection, status).inc()
    OUTGOING_LATENCY.labels(tenant, connection).observe(seconds)


def count_call_status(status: str) -> None:
    CALL_STATUSES.labels(status).inc()


def observe_webhook_attempt(outcome: str, seconds: float) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome).inc()
    WEBHOOK_LATENCY.observe(seconds)


def observe_queue_delay(task: str, seconds: float) -> None:
    TASK_QUEUE_DELAY.labels(task).observe(max(0.0, seconds))


# --- gauges read from the database at scrape time --------------------------------------------------


@dataclass(frozen=True)
class DatabaseGauge:
    name: str
    documentation: str
    labels: tuple[str, ...]
    # Returns (label values, value) pairs; should be one bounded, indexed query.
    read: Callable[[], Iterable[tuple[tuple[str, ...], float]]]


_gauges: dict[str, DatabaseGauge] = {}


def register_gauge(
    name: str, documentation: str, labels: Iterable[str], read: Callable[[], Iterable[tuple[tuple[str, ...], float]]]
) -> None:
    """Expose a gauge computed from the database on every scrape (call it from an AppConfig.ready()).

    Registering the same name again replaces it (autoreload, tests).
    """
    _gauges[name] = DatabaseGauge(name, documentation, tuple(labels), read)


class _DatabaseCollector:
    def collect(self):
        for gauge in list(_gauges.values()):
            family = GaugeMetricFamily(gauge.name, gauge.documentation, labels=list(gauge.labels))
            try:
                for label_values, value in gauge.read():
                    family.add_metric([str(v) for v in label_values], float(value))
            except Exception:  # one broken gauge must not take the whole scrape down
                logger.exception("metrics gauge %s failed", gauge.name)
                continue
            yield family


# --- exposition --------------------------------------------------------------------------------------


def token_accepted(authorization: str, expected: str) -> bool:
    """`Authorization: Bearer <METRICS_TOKEN>`, compared in constant time; anything goes when none is set."""
    if not expected:
        return True
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


def exposition(*, database_gauges: bool = True) -> bytes:
    """Every process's counters and histograms of this host, plus (unless told not to) the database
    gauges, in the Prometheus text format."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:  # single-process mode (prometheus-client imported before the settings set the folder)
        registry = REGISTRY
    output = generate_latest(registry)
    return output + generate_latest(_database_registry) if database_gauges else output


_database_registry = CollectorRegistry(auto_describe=False)
_database_registry.register(_DatabaseCollector())
