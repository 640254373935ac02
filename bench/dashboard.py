"""Benchmark of the admin dashboard's queries (run by hand; prints figures).

    .venv/bin/python bench/dashboard.py [--calls 100000] [--logs 100000] [--campaign-rows 20000] [--runs 5] [--explain]

Seeds one busy tenant and one as busy beside it (its rows must not cost the first anything) on
PostgreSQL — calls, deliveries, API logs, and `--running` running and `--finished` completed campaigns
of `--campaign-rows` rows each (finished campaigns' rows must cost the chart and the gauge nothing) — then times `adminsite.dashboard.build()` and each chart's query (median
of `--runs`), prints the number of queries and the rows each one returns, and times the
`switchboard_campaign_rows` gauge (`--explain` prints the campaign queries' plans). Uses its own
database (swb_bench_dashboard, created and migrated here; rows are added on each run).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "swb_bench_dashboard"
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "SWITCHBOARD_LOCAL_SECRETS": "true",
    "LOG_LEVEL": "WARNING",
}


def create_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    env = {**os.environ, **ENV}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL
    )


def seed(tenant, calls: int, logs: int) -> None:
    from django.utils import timezone

    from calls.models import Agent, Call, CallStatus, DeliveryStatus, SipTrunk, WebhookDelivery
    from integrations.models import ApiCallLog, Connection, Endpoint
    from integrations.models import CallStatus as ExecutionStatus

    now, rng = timezone.now(), random.Random(7)
    agent = Agent.objects.create(tenant=tenant, name="Bench", agent_code=f"bench-{uuid.uuid4().hex[:6]}")
    trunk = SipTrunk.objects.create(tenant=tenant, name="Bench", trunk_phone="+14155550123")
    statuses = [CallStatus.COMPLETED] * 6 + [CallStatus.DECLINE, CallStatus.SIP_CALL_FAILED, CallStatus.RINGING]
    dispositions = ["interested", "not_interested", "callback_requested", None]
    rows = [
        Call(
            tenant=tenant, agent=agent, sip_trunk=trunk, phone_number="+14155552671", status=rng.choice(statuses),
            created_at=now - timedelta(seconds=rng.randint(0, 60 * 86400)),
            call_outcome={"disposition": d} if (d := rng.choice(dispositions)) else None,
        )
        for _ in range(calls)
    ]  # fmt: skip
    Call.objects.bulk_create(rows, batch_size=5000)
    first = Call.objects.filter(tenant=tenant).first()
    WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(
                tenant=tenant, call=first, event="call.completed", url="https://hooks.example", payload="{}",
                webhook_id=uuid.uuid4().hex, status=rng.choice(DeliveryStatus.values),
                created_at=now - timedelta(seconds=rng.randint(0, 60 * 86400)),
            )
            for _ in range(calls)
        ],
        batch_size=5000,
    )  # fmt: skip
    endpoints = []
    for i in range(20):
        connection = Connection.objects.create(tenant=tenant, name=f"API {i}", base_url="https://api.example")
        endpoints.append(
            Endpoint.objects.create(
                tenant=tenant, connection=connection, name="E", tool_name=f"t_{uuid.uuid4().hex[:8]}"
            )
        )
    ApiCallLog.objects.bulk_create(
        [
            ApiCallLog(
                tenant=tenant, endpoint=rng.choice(endpoints), status=rng.choice([ExecutionStatus.SUCCESS] * 9 + [ExecutionStatus.ERROR]),
                duration_ms=int(rng.lognormvariate(4.5, 0.8)), created_at=now - timedelta(seconds=rng.randint(0, 3 * 86400)),
            )
            for _ in range(logs)
        ],
        batch_size=5000,
    )  # fmt: skip


def seed_campaigns(tenant, running: int, finished: int, rows: int) -> None:
    from calls.models import Agent, SipTrunk
    from campaigns.models import Campaign, CampaignRow, CampaignStatus, RowStatus

    rng = random.Random(11)
    agent, trunk = Agent.objects.filter(tenant=tenant).first(), SipTrunk.objects.filter(tenant=tenant).first()
    for i in range(running + finished):
        status = CampaignStatus.RUNNING if i < running else CampaignStatus.COMPLETED
        campaign = Campaign.objects.create(
            tenant=tenant, name=f"Bench {i}", agent=agent, sip_trunk=trunk, status=status
        )
        choices = [RowStatus.PENDING] * 5 + [RowStatus.COMPLETED] * 3 + [RowStatus.FAILED, RowStatus.CALLING]
        CampaignRow.objects.bulk_create(
            [
                CampaignRow(
                    tenant=tenant, campaign=campaign, row=n, phone_number=f"+1415{n:07d}",
                    status=rng.choice(choices) if status == CampaignStatus.RUNNING else RowStatus.COMPLETED,
                )
                for n in range(1, rows + 1)
            ],
            batch_size=5000,
        )  # fmt: skip


def explain(queryset) -> None:
    from django.db import connection

    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        for (line,) in cursor.fetchall():
            print(f"    {line}")


def timed(function, runs: int) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--campaign-rows", type=int, default=20_000)
    parser.add_argument("--running", type=int, default=3)
    parser.add_argument("--finished", type=int, default=6)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args()
    create_database()
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from datetime import datetime

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from adminsite import dashboard
    from campaigns import metrics
    from tenants.models import Tenant

    started = time.perf_counter()
    busy = Tenant.objects.create(name="Busy", slug=f"busy-{uuid.uuid4().hex[:6]}")
    beside = Tenant.objects.create(name="Beside", slug=f"beside-{uuid.uuid4().hex[:6]}")
    for tenant in (busy, beside):
        seed(tenant, args.calls, args.logs)
        seed_campaigns(tenant, args.running, args.finished, args.campaign_rows)
    print(
        f"seeded 2 tenants × {args.calls} calls, {args.calls} deliveries, {args.logs} API logs, "
        f"{args.running} running + {args.finished} completed campaigns of {args.campaign_rows} rows "
        f"in {time.perf_counter() - started:.0f} s"
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    now = timezone.now()
    since = timezone.make_aware(datetime.combine(timezone.localdate(now) - timedelta(days=13), datetime.min.time()))
    days = [timezone.localdate(now) - timedelta(days=o) for o in range(13, -1, -1)]
    charts = {
        "calls per day": lambda: dashboard.calls_per_day(busy, days, since),
        "outcomes": lambda: dashboard.outcome_distribution(busy, since),
        "API latency (24 h)": lambda: dashboard.api_latency(busy, now - timedelta(hours=24)),
        "webhook deliveries": lambda: dashboard.delivery_outcomes(busy, since),
        "campaigns' progress": lambda: dashboard.campaign_progress(busy),
    }
    for name, function in charts.items():
        ms, result = timed(function, args.runs)
        print(f"{name:>20}: {ms:8.1f} ms median, {len(result)} series/rows drawn")
    with CaptureQueriesContext(connection) as queries:
        ms, _ = timed(lambda: dashboard.build(busy), 1)
    print(f"{'whole dashboard':>20}: {ms:8.1f} ms, {len(queries)} queries")
    ms, values = timed(metrics.rows_by_status, args.runs)
    running_rows = sum(v for (campaign_status, _), v in values if campaign_status == "running")
    print(f"{'campaign rows gauge':>20}: {ms:8.1f} ms median, {running_rows} running rows counted (all tenants)")
    if args.explain:
        print("plan, campaigns' progress:")
        explain(dashboard.campaign_progress_query(busy))
        print("plan, campaign rows gauge:")
        explain(metrics.rows_query())


if __name__ == "__main__":
    main()
