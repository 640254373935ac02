"""Overhead of integrations.http.send() against a bare requests.Session, on a local keep-alive server.

Run: `.venv/bin/python bench/outbound_http.py [calls]` (default 2,000 calls per client). Prints figures; it
is not a test. The server runs in a child process, so this process's CPU time is the clients' own
cost; rounds of the clients are interleaved so machine noise hits them alike.

Measured:
- bare `requests.Session().get(url, timeout=...)` (as most code writes it; reads proxy/netrc
  settings from the environment on every call) and the same with `trust_env = False`;
- `send()` with private networks allowed (address checks lifted, as in development);
- `send()` with 127.0.0.0/8 allowed by OUTBOUND_ALLOWED_HOSTS: the full checked path (resolve,
  check every address, pin the connection to the checked address);
- the connect-time check of requests-hardened plus our deny list on a public address literal,
  alone (it cannot reach loopback, so it is timed without sending anything).
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import contextlib  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from integrations import http  # noqa: E402

ROUNDS = 8
SERVER = (
    "import sys, time\n"
    "from tests.support.http_servers import HttpServer\n"
    "server = HttpServer().start()\n"
    "print(server.port, flush=True)\n"
    "sys.stdin.read()\n"
)
PRIVATE = {"OUTBOUND_ALLOW_PRIVATE_NETWORKS": True, "OUTBOUND_ALLOWED_HOSTS": []}
CHECKED = {"OUTBOUND_ALLOW_PRIVATE_NETWORKS": False, "OUTBOUND_ALLOWED_HOSTS": ["127.0.0.0/8"]}


def bare_client(url: str, trust_env: bool):
    session = requests.Session()
    session.trust_env = trust_env

    def call():
        assert session.get(url, timeout=(3.0, 5.0)).status_code == 200

    return contextlib.nullcontext, call


def send_client(url: str, policy: dict):
    def call():
        assert http.send("GET", url, pool_key="bench").status_code == 200

    return (lambda: override_settings(**policy)), call


def run(clients: dict, calls: int) -> dict[str, tuple[float, float]]:
    """name → (wall seconds per call, CPU seconds per call), interleaved rounds."""
    per_round = calls // ROUNDS
    totals = {name: [0.0, 0.0] for name in clients}
    for context, call in clients.values():
        with context():
            call()  # warm the pools
    for _ in range(ROUNDS):
        for name, (context, call) in clients.items():
            with context():
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(per_round):
                    call()
                totals[name][0] += time.perf_counter() - wall
                totals[name][1] += time.process_time() - cpu
    n = per_round * ROUNDS
    return {name: (wall / n, cpu / n) for name, (wall, cpu) in totals.items()}


def connect_time_check_cost(n: int = 20000) -> float:
    """Seconds per call of the guarded adapter's pool-key step on a public literal (nothing sent)."""
    adapter = http._GuardedAdapter(is_https_proto=False)
    prepared = requests.Request("GET", "http://93.184.215.14/x").prepare()
    with override_settings(OUTBOUND_ALLOW_PRIVATE_NETWORKS=False, OUTBOUND_ALLOWED_HOSTS=[]):
        started = time.perf_counter()
        for _ in range(n):
            adapter.build_connection_pool_key_attributes(prepared, True)
        guarded = (time.perf_counter() - started) / n
    plain = requests.adapters.HTTPAdapter()
    started = time.perf_counter()
    for _ in range(n):
        plain.build_connection_pool_key_attributes(prepared, True)
    return guarded - (time.perf_counter() - started) / n


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/json"
        clients = {
            "bare requests.Session().get": bare_client(url, trust_env=True),
            "bare, trust_env=False": bare_client(url, trust_env=False),
            "send(), private networks allowed": send_client(url, PRIVATE),
            "send(), checked + pinned": send_client(url, CHECKED),
        }
        results = run(clients, calls)
    finally:
        server.stdin.close()
        server.wait(timeout=10)
    print(f"{calls} GETs per client to {url} (keep-alive, server in a child process), {ROUNDS} interleaved rounds\n")
    print(f"{'client':36} {'req/s':>8} {'wall µs':>9} {'client CPU µs':>14}")
    for name, (wall, cpu) in results.items():
        print(f"{name:36} {1 / wall:8.0f} {wall * 1e6:9.1f} {cpu * 1e6:14.1f}")
    print()
    for baseline in ("bare requests.Session().get", "bare, trust_env=False"):
        bare_wall, bare_cpu = results[baseline]
        for name in ("send(), private networks allowed", "send(), checked + pinned"):
            wall, cpu = results[name]
            print(
                f"{name} vs {baseline}: time ratio {wall / bare_wall:.2f}, "
                f"overhead {(wall - bare_wall) * 1e6:+.1f} µs wall, {(cpu - bare_cpu) * 1e6:+.1f} µs client CPU per call"
            )
    print(f"requests-hardened connect-time check + deny list, alone: {connect_time_check_cost() * 1e6:.1f} µs per call")


if __name__ == "__main__":
    main()
