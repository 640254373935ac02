"""Benchmark of outbound calls (run by hand; prints figures; loopback only, bounded loops).

    .venv/bin/python bench/calls.py [--seconds 10] [--clients 16] [--rounds 3] [--calls 1000] [--rate 5]
                                    [--live 10000]

Deployed as an operator would (README, "Deploying"): gunicorn 2 workers x 4 threads (gthread,
`--reuse-port`), PostgreSQL, Redis as cache and broker, DEBUG off; the load comes from wrk (Debian's
package) on loopback, keep-alive, as the issue measured. Each rate line shows how wrk's connections
were spread over the two workers mid-run ([9/7]): a lopsided split caps a run at about one core.
Prints the goals of issue #17 as ratios, all measured in this one run, and the ratio POST /calls
would reach were both runs CPU-bound (CPU per /healthz ÷ CPU per POST, every process counted):

1. Latency with one connection (p50): GET /healthz and an authenticated GET /api/v1/agents
   (goal: the list ≤ 3 x /healthz).
2. Sustained rate at `--clients` connections: GET /healthz, POST /integration/v1/calls on a trunk with
   no live call (goal: ≥ 35 % of /healthz) and on a second trunk holding `--live` live calls (goal:
   ≥ 90 % of the rate with none). Both trunks have large limits. The three alternate for `--rounds`
   rounds and the medians are compared, so a drift in the machine's load hits each alike; the calls a
   round places are ended after it (no worker runs then), so every round starts from the same counts.
3. Callback latency, terminal status → local receiver, p50/p99 over `--calls` calls placed through the
   API and driven by a real Celery worker (simulated dialer with short delays); `--calls 0` skips it.

Uses its own database (sb_perf_bench, created and migrated here), Redis db 10 and a private queue.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import resource
import shutil
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


def setup_tenant() -> tuple[str, dict, list[str]]:
    """A tenant with an API key, an agent and two trunks with large limits (the second gets live calls)."""
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
    trunks = [
        SipTrunk.objects.create(
            tenant=tenant,
            name=f"Bench {name}",
            trunk_phone="+14155552671",
            max_cps=1_000_000,
            max_channels=1_000_000,
            dialer_config={"ring_seconds": 0.1, "talk_seconds": 0.2, "outcome": "completed"},
        )
        for name in ("idle", "busy")
    ]
    body = {"phone_number": "+14155552671", "agent_id": str(agent.pk), "metadata": {"x": 1}}
    return key, body, [str(trunk.pk) for trunk in trunks]


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


def wrk(port: int, path: str, *, connections: int, seconds: float, key=None, body=None) -> dict[str, float]:
    """One wrk run: requests/s, p50 latency (ms), 2xx count and non-2xx count."""
    command = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "30s",
    ]
    if key:
        command += ["-H", f"Authorization: Bearer {key}"]
    script = None
    if body is not None:
        script = ROOT / ".local" / f"bench-wrk-{os.getpid()}.lua"
        payload = json.dumps(json.dumps(body))  # a Lua string literal holding the JSON body
        script.write_text(
            f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = {payload}\n'
        )
        command += ["-s", str(script)]
    process = subprocess.Popen(
        [*command, f"http://127.0.0.1:{port}{path}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(max(1, round(seconds)) / 2)
    split = connection_split(port)
    output, errors = process.communicate()
    if process.returncode:
        raise SystemExit(f"wrk failed ({process.returncode}): {errors}")
    if script:
        script.unlink()
    return {**_parse_wrk(output), "split": split}


def connection_split(port: int) -> str:
    """How wrk's connections are spread over gunicorn's workers right now (`ss`): "9/7" — the
    largest share first. Keep-alive connections stay with the worker that accepted them, and each
    worker runs Python on one core at a time, so a lopsided split caps the rate."""
    try:
        listing = subprocess.run(
            ["ss", "-Htnp", "state", "established", f"( sport = :{port} )"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "?"
    per_worker: dict[str, int] = {}
    for line in listing.splitlines():
        owner = re.search(r"pid=(\d+)", line)  # the first process holding the connection
        if owner:
            per_worker[owner[1]] = per_worker.get(owner[1], 0) + 1
    return "/".join(str(n) for n in sorted(per_worker.values(), reverse=True)) or "?"


def _parse_wrk(output: str) -> dict[str, float]:
    figures = {"rate": 0.0, "p50_ms": 0.0, "requests": 0.0, "bad": 0.0}
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    for line in output.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            figures["rate"] = float(words[1])
        elif words[:1] == ["50%"]:
            value = words[1]
            unit = next(u for u in ("us", "ms", "s") if value.endswith(u))
            figures["p50_ms"] = float(value[: -len(unit)]) * units[unit]
        elif "requests in" in line:
            figures["requests"] = float(words[0])
        elif line.strip().startswith("Non-2xx or 3xx responses:"):
            figures["bad"] = float(words[-1])
    return figures


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], log_name: str, *, cwd: Path = ROOT, env: dict | None = None) -> subprocess.Popen:
    log = (ROOT / ".local" / log_name).open("wb")
    return subprocess.Popen(
        command, cwd=cwd, env=env or ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def start_gunicorn(log_name: str, *, cwd: Path = ROOT, env: dict | None = None) -> tuple[subprocess.Popen, int]:
    """gunicorn as README's deploy runs it (2 workers x 4 threads, --reuse-port) on a free port."""
    port = free_port()
    web = start(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "-c", "python:config.gunicorn", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "4", "--worker-class", "gthread", "--reuse-port", "--no-control-socket"],
        log_name, cwd=cwd, env=env,
    )  # fmt: skip
    return web, port


def measured_wrk(
    web: subprocess.Popen, port: int, path: str, **wrk_args
) -> tuple[dict, float, dict[str, float], set[str]]:
    """One wrk run against `web`: its figures, gunicorn's CPU ms per request, the other programs' CPU ms
    per request (`cpu_spent`), and the programs one of whose processes ended meanwhile."""
    cpu, others = group_cpu_seconds(web.pid), cpu_by_process()
    figures = wrk(port, path, **wrk_args)
    per_request = 1000 / max(1.0, figures["requests"])
    gunicorn_ms = (group_cpu_seconds(web.pid) - cpu) * per_request
    spent, ended = cpu_spent(others, cpu_by_process())
    return figures, gunicorn_ms, {name: seconds * per_request for name, seconds in spent.items()}, ended


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


def cpu_by_process() -> dict[tuple[str, int], float]:
    """CPU seconds (user + system) of this machine's PostgreSQL and Redis processes by (program, pid),
    and of this process's finished children (wrk) as ("wrk", 0)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = {("wrk", 0): children.ru_utime + children.ru_stime}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        name = head.split("(", 1)[1]
        if name in ("postgres", "redis-server"):
            fields = tail.split()
            seconds[(name, int(stat.parent.name))] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds


def cpu_spent(
    before: dict[tuple[str, int], float], after: dict[tuple[str, int], float]
) -> tuple[dict[str, float], set[str]]:
    """CPU seconds spent per program between two `cpu_by_process` readings, and the programs one of
    whose processes ended meanwhile (a database connection recycled): their figure lacks its last CPU."""
    spent: dict[str, float] = dict.fromkeys(("postgres", "redis-server", "wrk"), 0.0)
    for (name, pid), total in after.items():
        spent[name] += total - before.get((name, pid), 0.0)
    return spent, {name for name, _ in before.keys() - after.keys()}


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


def rates(
    port: int, args, key: str, body: dict, web: subprocess.Popen, trunk_ids: list[str]
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """The rate of each label in each of `--rounds` alternating rounds, and its CPU ms per request (every
    process of the run: gunicorn, PostgreSQL, Redis, wrk); prints each round."""
    idle, busy = trunk_ids
    live_label = f"POST /calls, {args.live:,} live"
    runs = (
        ("GET /healthz", "/healthz", None, None),
        ("POST /integration/v1/calls", "/integration/v1/calls", key, {**body, "sip_trunk_id": idle}),
        (live_label, "/integration/v1/calls", key, {**body, "sip_trunk_id": busy}),
    )
    samples: dict[str, list[float]] = {label: [] for label, *_ in runs}
    cpu_samples: dict[str, list[float]] = {label: [] for label, *_ in runs}
    for round_number in range(1, args.rounds + 1):
        print(f"  round {round_number}:")
        for label, path, auth, payload in runs:
            figures, cpu_ms, spent, ended = measured_wrk(
                web, port, path, connections=args.clients, seconds=args.seconds, key=auth, body=payload
            )
            bad = f"   ({figures['bad']:.0f} non-2xx)" if figures["bad"] else ""
            print(
                f"    {label:31s}{figures['rate']:8.1f} req/s   CPU ms/request: gunicorn {cpu_ms:5.2f}"
                + "".join(f", {name} {ms:4.2f}{'+' * (name in ended)}" for name, ms in spent.items())
                + f"   [{figures['split']}]"
                + bad
            )
            samples[label].append(figures["rate"])
            cpu_samples[label].append(cpu_ms + sum(spent.values()))
            if payload:
                end_round_calls(payload["sip_trunk_id"])
    return samples, cpu_samples


def _round_ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    return [n / d for n, d in zip(numerators, denominators, strict=True) if d]


def _percentages(ratios: list[float]) -> str:
    return " ".join(f"{ratio:.0%}" for ratio in ratios)


def end_round_calls(trunk_id: str) -> None:
    """The calls a rate round placed were never dialed (no worker runs): end them, recount the trunk.

    The `--live` answered calls on the busy trunk stay live; only the round's queued calls end.
    """
    import redis

    from calls.models import Call

    redis.Redis.from_url(BROKER_URL).delete(QUEUE)
    Call.objects.filter(sip_trunk_id=trunk_id, status="Initiating").update(status="Trigger Failed")
    _reconcile(trunk_id)


def end_live_calls(trunk_id: str) -> None:
    from calls.models import Call

    Call.objects.filter(sip_trunk_id=trunk_id, status__in=["Initiating", "Answered"]).update(status="Trigger Failed")
    _reconcile(trunk_id)


def latencies_p50(port: int, args, key: str) -> tuple[float, float]:
    """Median over the rounds of the one-connection p50 of /healthz and of the authenticated list."""
    health, listing = [], []
    for _ in range(args.rounds):
        health.append(wrk(port, "/healthz", connections=1, seconds=args.seconds / 2)["p50_ms"])
        listing.append(wrk(port, "/api/v1/agents", connections=1, seconds=args.seconds / 2, key=key)["p50_ms"])
    print("  rounds: " + "   ".join(f"{h:.2f} / {li:.2f} ms" for h, li in zip(health, listing, strict=True)))
    return statistics.median(health), statistics.median(listing)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each rate measurement")
    parser.add_argument("--clients", type=int, default=16, help="wrk connections for the rate runs")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians are compared")
    parser.add_argument("--calls", type=int, default=1000, help="calls for the callback latency (0 skips it)")
    parser.add_argument("--rate", type=float, default=5.0, help="calls per second placed for the latency run")
    parser.add_argument("--live", type=int, default=10_000, help="live calls on the busy trunk")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("bench/calls.py needs wrk: apt-get install wrk")
    (ROOT / ".local").mkdir(exist_ok=True)
    create_database()
    key, body, trunk_ids = setup_tenant()
    add_live_calls(trunk_ids[1], args.live)
    web, port = start_gunicorn("bench-calls-gunicorn.log")
    latencies: list[float] = []
    try:
        wait_until_up(port)
        print(f"gunicorn 2 workers x 4 threads on PostgreSQL ({DATABASE}), Redis cache + broker, DEBUG off; wrk")
        print(f"latency, 1 connection, {args.seconds / 2:g} s each, /healthz / list:")
        health_ms, list_ms = latencies_p50(port, args, key)
        print(f"  GET /healthz p50 {health_ms:6.2f} ms   GET /api/v1/agents p50 {list_ms:6.2f} ms")
        print(f"  ratio list : /healthz p50 = {list_ms / health_ms:.2f} x   (goal ≤ 3 x)")
        print(f"rate, {args.clients} connections, {args.seconds:g} s each:")
        samples, cpu_samples = rates(port, args, key, body, web, trunk_ids)
        live_label = f"POST /calls, {args.live:,} live"
        figures = {label: statistics.median(values) for label, values in samples.items()}
        calls, health = figures["POST /integration/v1/calls"], figures["GET /healthz"]
        with_live = figures[live_label]
        print(
            f"  medians: /healthz {health:.1f}, POST /calls {calls:.1f}, with {args.live:,} live {with_live:.1f} req/s"
        )
        print("  (a + after a CPU figure: one of its processes ended during the run, so its last CPU is missing)")
        # Each round's own ratio compares measurements taken seconds apart, so a drift of the machine's
        # speed between rounds (seen here: /healthz anywhere from 900 to 2,300 req/s) cancels out.
        round_calls = _round_ratios(samples["POST /integration/v1/calls"], samples["GET /healthz"])
        round_live = _round_ratios(samples[live_label], samples["POST /integration/v1/calls"])
        print(
            f"  ratio POST /calls : /healthz = {calls / health:.1%} (of medians), {statistics.median(round_calls):.1%}"
            f" (median of the rounds' own: {_percentages(round_calls)})   (goal ≥ 35 %)"
        )
        # Were both runs CPU-bound (the machine never idle), the rates would be in inverse proportion to
        # the CPU each request costs: what the ratio can reach without removing work from a POST.
        bound = statistics.median(cpu_samples["GET /healthz"]) / statistics.median(
            cpu_samples["POST /integration/v1/calls"]
        )
        print(f"  CPU-bound ceiling of that ratio (CPU per /healthz ÷ CPU per POST, all processes): {bound:.1%}")
        print(
            f"  ratio POST /calls with {args.live:,} live : none = {with_live / calls:.1%} (of medians),"
            f" {statistics.median(round_live):.1%} (median of the rounds' own: {_percentages(round_live)})"
            "   (goal ≥ 90 %)"
        )
        end_live_calls(trunk_ids[1])
        if args.calls:
            latencies = callback_latency(port, key, {**body, "sip_trunk_id": trunk_ids[0]}, args.calls, args.rate)
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
