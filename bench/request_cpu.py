"""In-process cost of one request (run by hand; prints figures; no network server, loopback services only).

    .venv/bin/python bench/request_cpu.py [--requests 200] [--rounds 3] [--sql] [--profile list]

Sends requests straight into the WSGI application (`config.wsgi`, the whole middleware stack, as
gunicorn would call it) with the settings of bench/calls.py: PostgreSQL, Redis as cache and broker,
DEBUG off. The machine may be busy with other work, so the figures that matter are the ones load does
not change much: CPU ms per request (`time.process_time`), and round trips per request — SQL queries
(`CaptureQueriesContext`), connection health checks, new database connections and Redis commands
(pipelines count once; the Celery broker is Redis too). Wall ms is printed for reference.

Requests, side by side, interleaved in `--rounds` rounds of `--requests` each (median of rounds shown):
- GET /healthz
- GET /api/v1/agents with an API key (one agent)
- POST /integration/v1/calls on a trunk with large limits (the calls are ended afterwards)

`--sql` prints the statements of one request of each kind; `--profile healthz|list|calls` prints a
pyinstrument profile of `--requests` requests of that kind.

Figures on the 2-core development machine (2026-12-02, ~4 other suites running; CPU ms, SQL per
request; main at ec4720a before the perfapi branch, then after it, alternating in one session):
- GET /healthz            0.42-0.45 ms, 1 SQL      → 0.37-0.40 ms, 1 SQL
- GET /api/v1/agents      5.4-7.1 ms, 3 SQL        → 3.5-3.9 ms, 1 SQL (+ the key read once a second)
- POST /integration/v1/calls  9.2-10.6 ms, 10 SQL  → 9.8-9.9 ms, 10 SQL (call admission: perfcalls)
Then main at 4ca5b67 → the perflist branch (shared read fields, compiled list SQL, negotiation fast
path), alternating, two runs each: GET /api/v1/agents 3.96-4.09 ms → 2.40-2.84 ms (+3.6 → +1.9-2.3 ms
over /healthz), 1 SQL either way.
Then main at 22ed70e → the drf branch (browser-session middlewares idle on requests with an
Authorization header, negotiation and NUL-check shortcuts; a cheaper key copy, since reverted), same machine, load
1.7-5: in one process alternating both middleware stacks (10 rounds), POST /calls with trigger_call
answered from a canned result — the stack around it alone — 0.64-0.72 → 0.57-0.63 ms (healthz
0.33-0.38 either way); whole POST /calls 3.75-4.08 → 3.50-3.88 ms; GET /api/v1/agents 1.60-1.75 →
1.48-1.62 ms (separate processes, alternating, 4 pairs). Of the stack's ~0.3 ms over /healthz, the
rate limit's one Redis command is ~0.1 ms of CPU (redis-py: 9 system calls per command).
Each request: 1 Redis command for the rate limit, 1 connection health check, no new database or Redis
connection. A call's first dialer step is announced by NOTIFY and published by the worker's dispatcher
(calls.dispatcher), not here; with CALLS_DISPATCHER=false the web publishes it (+1 Redis command). Same
code, dispatcher off → on, alternating, two runs each (2026-12-02, load average ~3): POST /calls
4.45, 3.96 → 3.01, 2.76 ms CPU, 2 → 1 Redis commands, 2 SQL either way.
Main at a22a0fc (2026-12-03, another machine of the kind, quiet, 5 rounds of 300): /healthz 0.92 ms
CPU, 1 SQL; GET /api/v1/agents 2.82 ms, 1 SQL, 1 Redis command, no health check (the list is a
prepared read, tenants.db.read_rows); POST /calls 2.79 ms, 1 SQL, 1 Redis command, no health check.

Uses its own database (BENCH_DATABASE, default sb_perfapi_bench; created and migrated here), Redis db
BENCH_REDIS_URL (default redis://127.0.0.1:6379/5) and a private broker queue.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("BENCH_DATABASE", "sb_perfapi_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
QUEUE = f"bench-request-cpu-{uuid.uuid4().hex[:8]}"

os.environ.update(
    {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
        "CELERY_BROKER_URL": REDIS_URL,
        "REDIS_URL": REDIS_URL,
        "DEBUG": "false",
        "API_RATE_LIMIT": "1000000/1",  # a cost run, not a test of the per-key limit
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "SWITCHBOARD_LOCAL_SECRETS": "true",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="swb-bench-metrics-"),
    }
)
sys.path.insert(0, str(ROOT))
# WhiteNoise warns that collectstatic never ran; static files are not what is measured.
warnings.filterwarnings("ignore", message="No directory at")


def create_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')


create_database()

import django  # noqa: E402

django.setup()

import json  # noqa: E402

import redis  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from config.wsgi import application  # noqa: E402


@dataclass(frozen=True)
class Kind:
    name: str
    method: str
    path: str
    key: str | None = None
    body: bytes = b""
    ok: int = 200


def setup() -> tuple[list[Kind], str]:
    from calls.models import Agent, SipTrunk
    from tenants.models import Role
    from tenants.services import bootstrap_tenant, create_api_key

    call_command("migrate", "--noinput", verbosity=0)
    tenant, _, _ = bootstrap_tenant(f"Bench {uuid.uuid4().hex[:6]}")
    _, key = create_api_key(tenant, name="bench", role=Role.MEMBER)
    agent = Agent.objects.create(tenant=tenant, name="Bench", agent_code="bench", input_schema={"fields": ["x"]})
    trunk = SipTrunk.objects.create(
        tenant=tenant,
        name="Bench",
        trunk_phone="+14155552671",
        max_cps=1_000_000,
        max_channels=1_000_000,
        dialer_config={"ring_seconds": 0.1, "talk_seconds": 0.2, "outcome": "completed"},
    )
    body = {
        "phone_number": "+14155552671",
        "agent_id": str(agent.pk),
        "sip_trunk_id": str(trunk.pk),
        "metadata": {"x": 1},
    }
    kinds = [
        Kind("healthz", "GET", "/healthz"),
        Kind("list", "GET", "/api/v1/agents", key),
        Kind("calls", "POST", "/integration/v1/calls", key, json.dumps(body).encode(), 201),
    ]
    return kinds, str(trunk.pk)


def send(kind: Kind) -> None:
    """One request through the WSGI application, the response read and closed (as gunicorn does)."""
    environ = {
        "REQUEST_METHOD": kind.method,
        "PATH_INFO": kind.path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(kind.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
    }
    if kind.body:
        environ["CONTENT_TYPE"] = "application/json"
        environ["CONTENT_LENGTH"] = str(len(kind.body))
    if kind.key:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {kind.key}"
    statuses: list[str] = []
    result = application(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        content = b"".join(result)
    finally:
        result.close()  # sends request_finished: Django's connection housekeeping runs here
    if not statuses[0].startswith(str(kind.ok)):
        raise SystemExit(f"{kind.method} {kind.path} answered {statuses[0]}: {content[:300]!r}")


class RoundTrips:
    """Counts what a request waits on besides SQL: Redis commands, health checks, new connections."""

    def __init__(self) -> None:
        self.redis = self.redis_connects = self.health_checks = self.db_connects = 0
        connection_created.connect(self._db_connected, weak=False)
        self._wrap(redis.connection.AbstractConnection, "send_packed_command", "redis")
        self._wrap(redis.connection.Connection, "_connect", "redis_connects")  # opens a socket
        self._wrap(type(connections["default"]), "is_usable", "health_checks")

    def _db_connected(self, **kwargs) -> None:
        self.db_connects += 1

    def _wrap(self, owner: type, name: str, counter: str) -> None:
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            setattr(self, counter, getattr(self, counter) + 1)
            return original(*args, **kwargs)

        setattr(owner, name, counted)

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.redis, self.redis_connects, self.health_checks, self.db_connects


def backend_cpu_seconds() -> tuple[int, float]:
    """(pid, CPU seconds) of the PostgreSQL server process behind this thread's connection (Linux /proc)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(kind: Kind, count: int) -> tuple[float, float, float]:
    """(CPU ms, wall ms, PostgreSQL's CPU ms) per request over `count` requests; PostgreSQL's is NaN when
    the connection was replaced meanwhile (its server process is another one)."""
    pid, backend = backend_cpu_seconds()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        send(kind)
    cpu, wall = (time.process_time() - cpu) * 1000 / count, (time.perf_counter() - wall) * 1000 / count
    pid_after, backend_after = backend_cpu_seconds()
    pg = (backend_after - backend) * 1000 / count if pid_after == pid else math.nan
    return cpu, wall, pg


def count_round_trips(kind: Kind, trips: RoundTrips, count: int, show_sql: bool) -> tuple[float, ...]:
    before = trips.snapshot()
    with CaptureQueriesContext(connection) as captured:
        for _ in range(count):
            send(kind)
    after = trips.snapshot()
    if show_sql:
        per_request = len(captured.captured_queries) // count
        print(f"\n-- {kind.method} {kind.path}: the statements of one request")
        for query in captured.captured_queries[-per_request:]:
            print(f"   {query['time']}s  {query['sql'][:220]}")
    return (len(captured.captured_queries) / count, *((a - b) / count for a, b in zip(after, before, strict=True)))


def profile(kind: Kind, count: int) -> None:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(count):
        send(kind)
    profiler.stop()
    # The flat profile (time spent in each function itself, then in each function and what it calls):
    # a tree through the 11 middlewares is too deep to read.
    for flat_time in ("self", "total"):
        print(f"--- {kind.method} {kind.path}: {count} requests, time by function ({flat_time})")
        text = profiler.output_text(unicode=True, color=False, flat=True, flat_time=flat_time)
        print("\n".join(text.splitlines()[:45]))


def end_calls(trunk_id: str) -> None:
    """The calls were never dialed (no worker): drop their queued steps and end them."""
    from calls.models import Call

    redis.Redis.from_url(REDIS_URL).delete(QUEUE)
    Call.objects.filter(sip_trunk_id=trunk_id, status__in=["Initiating", "Answered"]).update(status="Trigger Failed")
    try:
        from calls.admission import reconcile_trunk
    except ImportError:
        return
    reconcile_trunk(trunk_id)


def report(
    kinds: list[Kind], runs: dict[str, list[tuple[float, float, float]]], trips: dict[str, tuple[float, ...]]
) -> None:
    print(
        f"{'request':32s}{'CPU ms':>8s}{'wall ms':>9s}{'pg ms':>7s}{'SQL':>6s}{'redis':>7s}{'health':>8s}{'db conn':>9s}{'r conn':>8s}"
    )
    figures: dict[str, float] = {}
    for kind in kinds:
        cpu = statistics.median(r[0] for r in runs[kind.name])
        wall = statistics.median(r[1] for r in runs[kind.name])
        pg = statistics.median(r[2] for r in runs[kind.name])
        figures[kind.name] = cpu
        queries, redis_cmds, redis_connects, health, db_connects = trips[kind.name]
        label = f"{kind.method} {kind.path}"
        print(
            f"{label:32s}{cpu:8.2f}{wall:9.2f}{pg:7.2f}{queries:6.1f}{redis_cmds:7.1f}{health:8.1f}{db_connects:9.2f}{redis_connects:8.2f}"
        )
    health_cpu = figures["healthz"]
    for name in ("list", "calls"):
        extra = figures[name] - health_cpu
        print(f"  {name}: {figures[name] / health_cpu:.2f} x /healthz CPU ({extra:+.2f} ms)")
    print("  (SQL = queries seen by Django; redis = commands or pipelines sent, broker included;")
    print("   pg ms = CPU of the PostgreSQL server process serving the requests;")
    print("   health = connection health checks; db conn / r conn = new database / Redis connections;")
    print("   all per request)")


def run(kinds: list[Kind], args: argparse.Namespace, choose: Callable[[str], Kind]) -> None:
    for kind in kinds:  # warm up: imports, URL resolver, prepared connections
        measure(kind, 20)
    if args.profile:
        profile(choose(args.profile), args.requests)
        return
    trip_counter = RoundTrips()
    trips = {kind.name: count_round_trips(kind, trip_counter, 20, args.sql) for kind in kinds}
    runs: dict[str, list[tuple[float, float, float]]] = {kind.name: [] for kind in kinds}
    for _ in range(args.rounds):
        for kind in kinds:
            runs[kind.name].append(measure(kind, args.requests))
    print(f"\nin-process, PostgreSQL ({DATABASE}), Redis cache + broker, DEBUG off; median of {args.rounds} rounds")
    print(f"of {args.requests} requests each (round trips from 20 requests)\n")
    report(kinds, runs, trips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="requests of each kind per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (the median is shown)")
    parser.add_argument("--sql", action="store_true", help="print the SQL of one request of each kind")
    parser.add_argument("--profile", choices=["healthz", "list", "calls"], help="pyinstrument profile of one kind")
    args = parser.parse_args()
    kinds, trunk_id = setup()
    by_name = {kind.name: kind for kind in kinds}
    try:
        run(kinds, args, by_name.__getitem__)
    finally:
        end_calls(trunk_id)


if __name__ == "__main__":
    main()
