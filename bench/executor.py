"""Benchmark: the executor's own overhead per call, against a bare `requests.Session` to the same server.

Run: `DEBUG=true .venv/bin/python bench/executor.py [--calls 2000] [--profile]`

Both loops make N keep-alive GET calls to a local server on 127.0.0.1 in one run; the executor loop
goes through `integrations.executor.execute()` (parameter validation, rendering, auth, the SSRF-safe
client, mapping and an ApiCallLog row per call). Prints both rates, the per-call overhead in ms and
the ratio. Uses a throw-away SQLite database in a temporary folder.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="swb-bench-")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_tmp}/bench.sqlite3")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true")
os.environ.setdefault("LOG_LEVEL", "WARNING")

BODY = b'{"data": {"price": {"amount": 12.5}}, "items": [{"id": 7}]}'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


def start_server() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def setup_endpoint(base_url: str):
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)
    from integrations.models import Connection, Credential, Endpoint
    from tenants.models import Tenant

    tenant = Tenant.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    credential = Credential.objects.create(tenant=tenant, name="k", type="bearer", secrets={"token": "bench-token-123"})
    connection = Connection.objects.create(tenant=tenant, name="Bench", base_url=base_url, credential=credential)
    endpoint = Endpoint.objects.create(
        tenant=tenant,
        connection=connection,
        name="Price",
        tool_name="price",
        path="/items/{item}",
        query={"currency": "{{currency}}"},
        parameters=[{"name": "item", "location": "path", "type": "integer", "required": True}],
        response_mapping={"price": "data.price.amount", "first": "items[0].id"},
    )
    return Endpoint.objects.select_related("connection__credential", "tenant").get(pk=endpoint.pk)


def run_requests(base_url: str, calls: int) -> float:
    import requests

    session = requests.Session()
    url = f"{base_url}/items/7?currency=PEN"
    headers = {"Authorization": "Bearer bench-token-123"}
    session.get(url, headers=headers, timeout=(3, 5)).json()
    started = time.perf_counter()
    for _ in range(calls):
        response = session.get(url, headers=headers, timeout=(3, 5))
        response.json()
    return time.perf_counter() - started


def run_executor(endpoint, calls: int) -> float:
    from integrations.executor import execute

    execute(endpoint, params={"item": 7}, variables={"currency": "PEN"})
    started = time.perf_counter()
    for _ in range(calls):
        result = execute(endpoint, params={"item": 7}, variables={"currency": "PEN"})
        assert result.status == "success", result.to_dict()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", action="store_true", help="cProfile the executor loop, top 25 by cumulative time")
    args = parser.parse_args()
    server = start_server()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    endpoint = setup_endpoint(base_url)

    bare = run_requests(base_url, args.calls)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
    executor = run_executor(endpoint, args.calls)
    if args.profile:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)

    from integrations.models import ApiCallLog

    per_bare, per_exec = bare / args.calls * 1000, executor / args.calls * 1000
    print(f"calls per loop:          {args.calls}")
    print(f"bare requests.Session:   {args.calls / bare:8.0f} calls/s  ({per_bare:.3f} ms/call)")
    print(f"integrations execute():  {args.calls / executor:8.0f} calls/s  ({per_exec:.3f} ms/call)")
    print(f"executor overhead:       {per_exec - per_bare:.3f} ms/call")
    print(f"ratio executor/bare:     {executor / bare:.2f}x")
    print(f"ApiCallLog rows written: {ApiCallLog.objects.count()}")
    server.shutdown()


if __name__ == "__main__":
    main()
