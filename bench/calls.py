"""Benchmark of outbound calls (run by hand; prints figures; loopback only, bounded loops).

    .venv/bin/python bench/calls.py [--seconds 10] [--clients 16] [--calls 1000] [--rate 5] [--live 10000]

Deployed as an operator would: gunicorn 2 workers x 4 threads (gthread), PostgreSQL, Redis as cache
and broker, DEBUG off. Prints the goals of issue #17 as ratios, all measured in this one run:

1. Latency with one connection (p50): GET /healthz and an authenticated GET /api/v1/agents
   (goal: the list ≤ 3 x /healthz).
2. Sustained rate at `--clients` connections: GET /healthz and POST /integration/v1/calls against a
   trunk with large limits (goal: POST /calls ≥ 35 % of /healthz), then POST /calls again with
   `--live` live calls on the trunk (goal: ≥ 90 % of the rate with none).
3. Callback latency, terminal status → local receiver, p50/p99 over `--calls` calls placed through the
   API and driven by a real Celery worker (simulated dialer with short delays); `--calls 0` skips it.

Uses its own database (sb_perf_bench, created and migrated here), Redis db 10 and a private queue.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = os.environ.get("BENCH_DATABASE", "sb_perf_bench")
PG_URL = f"postgres://postgres@127.0.0.1:5432/{DATABASE}"
BROKER_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
QUEUE = f"bench-calls-{uuid.uuid4().hex[:8]}"

ENV = {
    **os.environ,
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DATABASE_URL": PG_URL,
    "CELERY_BROKER_URL": BROKER_URL,
    "REDIS_URL": BROKER_URL,
    "DEBUG": "false",
    "API_RATE_LIMIT": "1000000/1",  # a throughput run, not a test of the per-key limit
    "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
    "SWITCHBOARD_LOCAL_SECRETS": "true",
    "SECURE_SSL_REDIRECT": "false",
    "OUTBOUND_ALLOW_PRIVATE_NETWORKS": "true",
    "LOG_LEVEL": "WARNING",
}


def create_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=ENV, check=True, stdout=subprocess.DEVNULL
    )


def setup_tenant() -> tuple[str, dict, str]:
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from calls.models import Agent, SipTrunk
    from tenants.models import Role
    from tenants.services import bootstrap_tenant, create_api_key

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
    return key, body, str(trunk.pk)


def add_live_calls(trunk_id: str, count: int) -> None:
    """`count` answered (live) calls on the trunk, as a trunk full of long calls would hold."""
    from django.utils import timezone

    from calls.models import Agent, Call, CallStatus, SipTrunk

    trunk = SipTrunk.objects.get(pk=trunk_id)
    agent = Agent.objects.filter(tenant=trunk.tenant).first()
    now = timezone.now()
    Call.objects.bulk_create(
        [
            Call(tenant=trunk.tenant, agent=agent, sip_trunk=trunk, phone_number="+14155552671",
                 status=CallStatus.ANSWERED, created_at=now, started_at=now, last_updated=now)
            for _ in range(count)
        ],
        batch_size=2000,
    )  # fmt: skip
    _reconcile(trunk_id)
    from django.db import connection

    with connection.cursor() as cursor:  # settle the statistics now, not autovacuum mid-measurement
        cursor.execute("VACUUM ANALYZE calls_call")
    time.sleep(2)


def _reconcile(trunk_id: str) -> None:
    try:
        from calls.admission import reconcile_trunk
    except ImportError:  # before the trunk kept counters: nothing to reconcile
        return
    reconcile_trunk(trunk_id)


def latency_p50(port: int, path: str, seconds: float, key: str | None = None) -> float:
    """p50 in ms of back-to-back requests on one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    samples = []
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        started = time.perf_counter()
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        response.read()
        samples.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"GET {path} answered {response.status}")
    conn.close()
    return statistics.median(samples) * 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], log_name: str) -> subprocess.Popen:
    log = (ROOT / ".local" / log_name).open("wb")
    return subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_until_up(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def request(port: int, method: str, path: str, key: str | None = None, body: dict | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


def _load(job: tuple) -> tuple[int, int]:
    """One client process: `threads` threads sending requests until `ends` (wall clock)."""
    port, method, path, key, body, threads, ends = job
    counts = {"ok": 0, "bad": 0}
    lock = threading.Lock()

    def run() -> None:
        while time.time() < ends:
            status = request(port, method, path, key, body)
            with lock:
                counts["ok" if status in (200, 201) else "bad"] += 1

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return counts["ok"], counts["bad"]


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes of process group `pgid` (Linux /proc)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def sustained_rate(
    port: int, method: str, path: str, seconds: float, clients: int, key=None, body=None
) -> tuple[float, int]:
    processes = 2
    ends = time.time() + seconds
    job = (port, method, path, key, body, max(1, clients // processes), ends)
    started = time.monotonic()
    from django.db import connections

    connections.close_all()  # the forked clients must not share the parent's database socket
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        results = pool.map(_load, [job] * processes)
    elapsed = time.monotonic() - started
    ok, bad = sum(r[0] for r in results), sum(r[1] for r in results)
    if bad:
        print(f"  ({bad} non-2xx answers on {path})")
    return ok / elapsed, ok


class Receiver(BaseHTTPRequestHandler):
    arrivals: dict[str, float] = {}

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        arrived = time.time()
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.arrivals[json.loads(body)["call_id"]] = arrived
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def callback_latency(port: int, key: str, body: dict, calls: int, rate: float) -> list[float]:
    from calls.models import Call

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    worker = start(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=4", "--loglevel=WARNING", "-Q", QUEUE,
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        "bench-calls-worker.log",
    )  # fmt: skip
    ids: list[str] = []
    try:
        time.sleep(3)
        cpu = group_cpu_seconds(worker.pid)
        started = time.monotonic()
        for n in range(calls):
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request(
                "POST",
                "/integration/v1/calls",
                body=json.dumps({**body, "callback_url": hook}),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            answer = json.loads(response.read())
            if response.status != 201:
                raise SystemExit(f"POST /calls answered {response.status}: {answer}")
            ids.append(answer["call_id"])
            conn.close()
        deadline = time.monotonic() + 120
        while len(Receiver.arrivals) < calls and time.monotonic() < deadline:
            time.sleep(0.2)
        print(f"  worker CPU {(group_cpu_seconds(worker.pid) - cpu) * 1000 / calls:.1f} ms per call (4 tasks each)")
    finally:
        stop(worker)
        receiver.shutdown()
    ended = dict(Call.objects.filter(pk__in=ids).values_list("pk", "end_timestamp"))
    return [Receiver.arrivals[i] - ended[uuid.UUID(i)].timestamp() for i in ids if i in Receiver.arrivals]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def rates(port: int, args, key: str, body: dict, web: subprocess.Popen, trunk_id: str) -> dict[str, float]:
    figures = {}
    runs = (
        ("GET /healthz", "GET", "/healthz", None),
        ("POST /integration/v1/calls", "POST", "/integration/v1/calls", key),
        (f"POST /calls, {args.live:,} live", "POST", "/integration/v1/calls", key),
    )
    for label, method, path, auth in runs:
        if "live" in label:
            add_live_calls(trunk_id, args.live)
        cpu = group_cpu_seconds(web.pid)
        rate, count = sustained_rate(port, method, path, args.seconds, args.clients, auth, body if auth else None)
        cpu_ms = (group_cpu_seconds(web.pid) - cpu) * 1000 / max(1, count)
        figures[label] = rate
        print(f"  {label:31s}{rate:8.1f} req/s   gunicorn CPU {cpu_ms:5.2f} ms/request")
    return figures


def end_bench_calls(trunk_id: str) -> None:
    """The rate runs' calls were never dialed (no worker): drop their queued steps and end them."""
    import redis

    from calls.models import Call

    redis.Redis.from_url(BROKER_URL).delete(QUEUE)
    Call.objects.filter(sip_trunk_id=trunk_id, status__in=["Initiating", "Answered"]).update(status="Trigger Failed")
    _reconcile(trunk_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each rate measurement")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--calls", type=int, default=1000, help="calls for the callback latency")
    parser.add_argument("--rate", type=float, default=5.0, help="calls per second placed for the latency run")
    parser.add_argument("--live", type=int, default=10_000, help="live calls on the trunk for the third rate run")
    args = parser.parse_args()
    (ROOT / ".local").mkdir(exist_ok=True)
    create_database()
    key, body, trunk_id = setup_tenant()
    port = free_port()
    web = start(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--worker-class", "gthread", "--no-control-socket"],
        "bench-calls-gunicorn.log",
    )  # fmt: skip
    latencies: list[float] = []
    try:
        wait_until_up(port)
        print(f"gunicorn 2 workers x 4 threads on PostgreSQL ({DATABASE}), Redis cache + broker, DEBUG off")
        print(f"latency, 1 connection, {args.seconds:g} s each:")
        health_ms = latency_p50(port, "/healthz", args.seconds)
        list_ms = latency_p50(port, "/api/v1/agents", args.seconds, key)
        print(f"  GET /healthz p50 {health_ms:6.2f} ms   GET /api/v1/agents p50 {list_ms:6.2f} ms")
        print(f"  ratio list : /healthz p50 = {list_ms / health_ms:.2f} x   (goal ≤ 3 x)")
        print(f"rate, {args.clients} connections, {args.seconds:g} s each:")
        figures = rates(port, args, key, body, web, trunk_id)
        calls, health = figures["POST /integration/v1/calls"], figures["GET /healthz"]
        with_live = figures[f"POST /calls, {args.live:,} live"]
        print(f"  ratio POST /calls : /healthz = {calls / health:.1%}   (goal ≥ 35 %)")
        print(f"  ratio POST /calls with {args.live:,} live : none = {with_live / calls:.1%}   (goal ≥ 90 %)")
        end_bench_calls(trunk_id)
        if args.calls:
            latencies = callback_latency(port, key, body, args.calls, args.rate)
    finally:
        stop(web)
    if not args.calls:
        return
    if not latencies:
        raise SystemExit("no callback arrived")
    print(f"callback latency, terminal status → receiver, {len(latencies)}/{args.calls} calls at {args.rate:g}/s:")
    print(
        f"  p50 {percentile(latencies, 50) * 1000:7.1f} ms   p99 {percentile(latencies, 99) * 1000:7.1f} ms"
        f"   max {max(latencies) * 1000:7.1f} ms   mean {statistics.mean(latencies) * 1000:7.1f} ms"
    )


if __name__ == "__main__":
    main()
