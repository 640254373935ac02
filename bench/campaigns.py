"""Benchmark of campaigns (run by hand; prints figures; loopback only, bounded loops).

    .venv/bin/python bench/campaigns.py [--rows 100000] [--seconds 5]

1. Import of `--rows` rows (CSV through campaigns.importing, as the upload does): seconds (goal < 30 s).
2. The dispatcher's time per tick (claiming one batch of due rows) in campaigns of 1,000, 10,000 and
   `--rows` rows: it must not grow with the campaign's size.
3. A running campaign against a trunk with max_cps 20, dispatched every 50 ms with the dial step run
   by four threads (as four workers would; the simulated dialer places the call): achieved starts per
   second, and the lag between a row
   becoming due and its call starting (p50/p99; goal p99 < 1 s at max_cps).

Uses its own PostgreSQL database (sb_campaigns_bench, created and migrated here); set DATABASE_URL to
use another. Nothing leaves the machine: the trunk is simulated and there are no steps.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "sb_campaigns_bench"
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{DATABASE}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("SWITCHBOARD_LOCAL_SECRETS", "true")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Tasks are not sent anywhere: the benchmark runs the steps itself.
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
sys.path.insert(0, str(ROOT))


def create_database() -> None:
    if DATABASE in os.environ["DATABASE_URL"]:
        import psycopg

        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL
    )


def csv_rows(count: int) -> bytes:
    lines = ["phone_number,customer_id,name"]
    lines += [f"+1415{5000000 + i:07d},C{i},Customer {i}" for i in range(count)]
    return ("\n".join(lines) + "\n").encode()


def setup(name: str, *, max_cps: int = 1000, max_channels: int = 100_000):
    from calls.models import Agent, SipTrunk
    from campaigns.models import Campaign
    from tenants.models import Tenant

    tenant, _ = Tenant.objects.get_or_create(slug="bench-campaigns", defaults={"name": "Bench campaigns"})
    agent, _ = Agent.objects.get_or_create(tenant=tenant, agent_code="bench", defaults={"name": "Bench"})
    trunk = SipTrunk.objects.create(
        tenant=tenant,
        name=name,
        trunk_phone="+14155550100",
        max_cps=max_cps,
        max_channels=max_channels,
        dialer_config={"ring_seconds": 60, "talk_seconds": 60, "outcome": "completed"},
    )
    window = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
    return Campaign.objects.create(
        tenant=tenant, name=name, agent=agent, sip_trunk=trunk, calling_window=window, max_concurrent_calls=1000
    )


def bench_import(rows: int):
    from campaigns.importing import import_rows, read_csv

    campaign = setup(f"import {rows}")
    content = csv_rows(rows)
    started = time.perf_counter()
    report = import_rows(campaign, read_csv(content))
    elapsed = time.perf_counter() - started
    print(f"import: {report.accepted} rows ({len(content) / 1e6:.1f} MB CSV) in {elapsed:.1f} s (goal < 30 s)")
    return campaign


def bench_tick(campaign, label: str, ticks: int = 20) -> None:
    from campaigns import dispatch
    from campaigns.models import CampaignRow, CampaignStatus

    campaign.refresh_from_db()  # the import stored the campaign's zone keys
    campaign.status = CampaignStatus.RUNNING
    campaign.max_concurrent_calls = 50
    campaign.save()
    times = []
    claimed = 0
    for _ in range(ticks):
        started = time.perf_counter()
        claimed += dispatch.dispatch_campaign(campaign.pk)
        times.append((time.perf_counter() - started) * 1000)
        CampaignRow.objects.filter(campaign=campaign, status="calling").update(status="pending")  # next tick again
    per_tick = claimed / ticks
    print(
        f"tick, {label}: p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms ({per_tick:.0f} rows claimed)"
    )


def _dial(row_id) -> None:
    from django.db import connections

    from campaigns import dispatch

    try:
        dispatch.dial_row(row_id)
    finally:
        connections.close_all()


def bench_pacing(seconds: float) -> None:
    from django.db import connections
    from django.utils import timezone

    from calls.models import Call
    from campaigns import dispatch
    from campaigns.importing import import_rows, read_csv
    from campaigns.models import CampaignRow, CampaignStatus

    campaign = setup("pacing", max_cps=20, max_channels=10_000)
    import_rows(campaign, read_csv(csv_rows(int(seconds * 40))))
    # Rows fall due at the trunk's rate, 20 per second, from a moment after these updates are done.
    start = timezone.now() + timedelta(seconds=3)
    for index, pk in enumerate(
        CampaignRow.objects.filter(campaign=campaign).order_by("row").values_list("pk", flat=True)
    ):
        CampaignRow.objects.filter(pk=pk).update(next_attempt_at=start + timedelta(seconds=index / 20))
    campaign.refresh_from_db()  # the import stored the campaign's zone keys
    campaign.status, campaign.max_concurrent_calls = CampaignStatus.RUNNING, 10_000
    campaign.save()
    deadline = time.monotonic() + seconds + (start - timezone.now()).total_seconds()
    # Four threads play four Celery workers running campaigns.dial_row.
    with ThreadPoolExecutor(max_workers=4, initializer=connections.close_all) as workers:
        while time.monotonic() < deadline:
            for row_id in dispatch._claim(campaign, timezone.now()):
                workers.submit(_dial, row_id)
            time.sleep(0.05)
    rows = CampaignRow.objects.filter(campaign=campaign, call__isnull=False).select_related("call")
    lags = sorted((r.call.started_at - r.next_attempt_at).total_seconds() for r in rows)
    calls = Call.objects.filter(sip_trunk=campaign.sip_trunk).order_by("started_at")
    span = (calls.last().started_at - calls.first().started_at).total_seconds() if calls.count() > 1 else 0
    rate = (calls.count() - 1) / span if span else 0
    if not lags:
        print("pacing: no call started")
        return
    p99 = lags[max(0, int(len(lags) * 0.99) - 1)]
    print(
        f"pacing at max_cps 20: {calls.count()} calls, {rate:.1f} starts/s; "
        f"lag due → started p50 {statistics.median(lags) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (goal < 1000 ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    create_database()
    import django

    django.setup()
    big = bench_import(args.rows)
    for size in (1_000, 10_000):
        from campaigns.importing import import_rows, read_csv

        campaign = setup(f"tick {size}")
        import_rows(campaign, read_csv(csv_rows(size)))
        bench_tick(campaign, f"{size} rows")
    bench_tick(big, f"{args.rows} rows")
    bench_pacing(args.seconds)


if __name__ == "__main__":
    main()
