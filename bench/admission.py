"""In-process cost of call admission (run by hand; prints figures; CPU and statement counts do not
depend much on how busy the shared machine is, wall ms does).

    .venv/bin/python bench/admission.py [--requests 200] [--live 10000]

On PostgreSQL with DEBUG off (the whole request, middleware and API key included, is
bench/request_cpu.py's; this is the call service alone):

1. `trigger_call` with the calls placed so far live on the trunk, then with `--live` more: wall ms, CPU
   ms and SQL statements per call, and the statements while the trunk's row is locked (from the
   statement that locks or conditionally updates it to the commit, the commit not counted; 1 when
   that statement commits by itself);
2. the broker publish of the dialer task (`tenants.queue.enqueue`): ms per call and the broker connections
   opened for `--requests` publishes (reused connections: 0). On PostgreSQL the web no longer pays it:
   the worker's call dispatcher (`calls.dispatcher`) publishes each announced call.

Uses its own database (BENCH_DATABASE, default sb_perfcalls_bench, created and migrated here), Redis
db 6 (BENCH_REDIS_URL) and a private queue that it deletes at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("BENCH_DATABASE", "sb_perfcalls_bench")
BROKER_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6")
QUEUE = f"bench-admission-{uuid.uuid4().hex[:8]}"
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "CELERY_BROKER_URL": BROKER_URL,
    "REDIS_URL": BROKER_URL,
    "DEBUG": "false",
    "API_RATE_LIMIT": "1000000/1",
    "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
    "SWITCHBOARD_LOCAL_SECRETS": "true",
    "SECURE_SSL_REDIRECT": "false",
    "LOG_LEVEL": "WARNING",
}


def setup() -> None:
    import psycopg

    os.environ.update(ENV)
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=ROOT,
        env={**os.environ, **ENV},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def fixtures() -> tuple[object, dict]:
    from calls.models import Agent, SipTrunk
    from tenants.services import bootstrap_tenant

    tenant, _, _ = bootstrap_tenant(f"Bench {uuid.uuid4().hex[:6]}")
    agent = Agent.objects.create(tenant=tenant, name="Bench", agent_code="bench", input_schema={"fields": ["x"]})
    trunk = SipTrunk.objects.create(
        tenant=tenant, name="Bench", trunk_phone="+14155552671", max_cps=1_000_000, max_channels=1_000_000
    )
    body = {
        "phone_number": "+14155552671",
        "agent_id": str(agent.pk),
        "sip_trunk_id": str(trunk.pk),
        "metadata": {"x": 1},
    }
    return tenant, body


class Stats:
    """Wall and CPU time and SQL statements of repeated work."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.statements: list[int] = []
        self.locked: list[int] = []

    def run(self, work, count: int) -> Stats:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        for _ in range(count):
            with CaptureQueriesContext(connection) as queries:
                wall, cpu = time.perf_counter(), time.process_time()
                work()
                self.cpu.append(time.process_time() - cpu)
                self.wall.append(time.perf_counter() - wall)
            sql = [q["sql"] for q in queries.captured_queries]
            self.statements.append(len(sql))
            self.locked.append(statements_under_trunk_lock(sql))
        return self

    def line(self, label: str) -> str:
        return (
            f"  {label:34s} wall p50 {statistics.median(self.wall) * 1000:6.2f} ms   "
            f"CPU mean {statistics.mean(self.cpu) * 1000:6.2f} ms   "
            f"statements {statistics.median(self.statements):4.0f}   "
            f"under the trunk lock {statistics.median(self.locked):3.0f}"
        )


def statements_under_trunk_lock(sql: list[str]) -> int:
    """Statements from the one that locks (or conditionally updates) the trunk row to the COMMIT."""
    start = next((i for i, s in enumerate(sql) if is_trunk_lock(s)), None)
    if start is None:
        return 0
    end = next((i for i in range(start, len(sql)) if sql[i].upper().startswith(("COMMIT", "RELEASE"))), len(sql))
    return end - start


def is_trunk_lock(statement: str) -> bool:
    """A statement that locks the trunk's row: SELECT … FOR UPDATE, or an UPDATE of its counters."""
    text = statement.upper()
    on_trunk = "CALLS_SIPTRUNK" in text
    return on_trunk and ("FOR UPDATE" in text or ("UPDATE CALLS_SIPTRUNK" in text and "LIVE_CALLS" in text))


def admission_figures(tenant, body: dict, count: int, live: int) -> None:
    from calls import services

    def admit() -> None:
        assert services.trigger_call(tenant, body).accepted

    admit()
    print(f"trigger_call in process, {count} calls each:")
    print(Stats().run(admit, count).line(f"{live_calls(body):,} live calls"))
    if live:
        add_live_calls(body["sip_trunk_id"], live)
        print(Stats().run(admit, count).line(f"{live_calls(body):,} live calls"))


def live_calls(body: dict) -> int:
    from calls.models import LIVE_STATUSES, Call

    return Call.objects.filter(sip_trunk_id=body["sip_trunk_id"], status__in=LIVE_STATUSES).count()


def add_live_calls(trunk_id: str, count: int) -> None:
    from django.db import connection
    from django.utils import timezone

    from calls import admission
    from calls.models import Agent, Call, CallStatus, SipTrunk

    trunk = SipTrunk.objects.get(pk=trunk_id)
    agent = Agent.objects.filter(tenant=trunk.tenant).first()
    now = timezone.now()
    rows = [
        Call(tenant=trunk.tenant, agent=agent, sip_trunk=trunk, phone_number="+14155552671",
             status=CallStatus.ANSWERED, created_at=now, started_at=now, last_updated=now)
        for _ in range(count)
    ]  # fmt: skip
    Call.objects.bulk_create(rows, batch_size=2000)
    admission.reconcile_trunk(trunk_id)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE calls_call")


def enqueue_figures(count: int) -> None:
    import redis

    from tenants import queue

    probe = redis.Redis.from_url(BROKER_URL)
    queue.enqueue("calls.advance_call", uuid.uuid4())  # warm: the first publish opens the connection
    opened = int(probe.info("stats")["total_connections_received"])
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        queue.enqueue("calls.advance_call", uuid.uuid4())
        samples.append(time.perf_counter() - started)
    opened = int(probe.info("stats")["total_connections_received"]) - opened
    print(f"broker publish (tenants.queue.enqueue → Redis), {count} tasks:")
    print(
        f"  p50 {statistics.median(samples) * 1000:6.2f} ms   mean {statistics.mean(samples) * 1000:6.2f} ms   "
        f"broker connections opened {opened} (server-wide counter: other clients count too)"
    )


def cleanup(tenant) -> None:
    import redis

    from calls.models import Call, CallStatus

    redis.Redis.from_url(BROKER_URL).delete(QUEUE)
    Call.objects.filter(tenant=tenant).exclude(status=CallStatus.REJECTED_CAPACITY).update(status="Trigger Failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests (calls) per figure")
    parser.add_argument("--live", type=int, default=10_000, help="live calls on the trunk for the second figure")
    args = parser.parse_args()
    setup()
    tenant, body = fixtures()
    try:
        admission_figures(tenant, body, args.requests, args.live)
        enqueue_figures(args.requests)
    finally:
        cleanup(tenant)


if __name__ == "__main__":
    main()
