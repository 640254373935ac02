"""Benchmark the rule engine and the widget message endpoint (run by hand, prints figures).

    .venv/bin/python bench/rules.py            # SQLite in a temporary folder
    DATABASE_URL=postgres://... .venv/bin/python bench/rules.py

1. Per-message evaluation with 10, 100, 1,000 and 10,000 regex rules (no API call), with and without
   the RE2 set prefilter: warm messages — live (`evaluate_message`, which also saves the messages:
   wall time, CPU time and SQL statements) and dry run (matching only). Then compiling: a message in
   a process with no copy (builds on the message), the compile task (rules.compile_ruleset) and a
   build from its snapshot, and after a rule change with background compile: how long the background
   build takes, the first live message right after the change, and how many builds messages did (0).
2. The widget message endpoint's throughput for a rule that calls a local API, next to that API's
   own latency measured with the same HTTP client.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="swb-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_tmp}/bench.sqlite3")
os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true")

import django  # noqa: E402

django.setup()

import json  # noqa: E402

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from integrations import http  # noqa: E402
from integrations.models import Connection, Endpoint  # noqa: E402
from rules import compiled, ruleset  # noqa: E402
from rules.definitions import parse_actions, replace_actions  # noqa: E402
from rules.engine import evaluate_message  # noqa: E402
from rules.models import Conversation, Rule, RuleAction, WidgetKey  # noqa: E402
from tenants.models import Tenant  # noqa: E402

PRICE_BODY = b'{"data": {"price": {"amount": 12.5, "currency": "EUR"}}}'


class PriceAPI(BaseHTTPRequestHandler):
    """A keep-alive JSON API on loopback. TCP_NODELAY: without it, headers and body leave in two
    segments and the client's delayed ACK adds ~40 ms to every keep-alive request."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(PRICE_BODY)))
        self.end_headers()
        self.wfile.write(PRICE_BODY)

    def log_message(self, *args) -> None:
        pass


WORDS = ["price", "order", "refund", "ship", "cancel", "invoice", "account", "login", "password", "delivery"]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f} ms"


def timed(function, repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return samples


def make_tenant(name: str) -> Tenant:
    # A run on a kept database (DATABASE_URL) finds the tenants of earlier runs: slugs are made unique.
    return Tenant.objects.create(name=name, slug=f"{name.lower().replace(' ', '-')}-{uuid.uuid4().hex[:8]}")


def seed_rules(tenant: Tenant, count: int) -> None:
    rules = []
    for n in range(count):
        word = WORDS[n % len(WORDS)]
        rules.append(
            Rule(
                tenant=tenant,
                name=f"rule {n}",
                priority=n,
                trigger_type="regex",
                pattern=rf"\b{word}[- ]?#?{n}\b(?:\s+(?P<extra>\w+))?",
                flags="i" if n % 2 else "",
            )
        )
    Rule.objects.bulk_create(rules, batch_size=1000)
    last = Rule.objects.get(tenant=tenant, name=f"rule {count - 1}")
    RuleAction.objects.create(tenant=tenant, rule=last, position=0, type="REPLY_TEXT", template="matched {extra}")


def engine_figures(count: int, *, prefilter: bool) -> dict:
    compiled.SET_THRESHOLD = 64 if prefilter else 10**9
    ruleset.clear_cache()
    tenant = make_tenant(f"bench {count} {prefilter}")
    seed_rules(tenant, count)
    conversation = Conversation.objects.create(tenant=tenant)
    last_word = WORDS[(count - 1) % len(WORDS)]
    matching = f"hello, about {last_word} #{count - 1} please"  # the last rule: every rule is tried
    missing = "nothing here matches any rule at all, " * 3
    figures = {"cold": timed(lambda: evaluate_message(conversation, matching), 1)[0]}  # builds on the message
    figures["dry_miss"] = statistics.median(timed(lambda: evaluate_message(conversation, missing, dry_run=True), 50))
    figures["dry_hit"] = statistics.median(timed(lambda: evaluate_message(conversation, matching, dry_run=True), 50))
    figures["live_hit"] = statistics.median(timed(lambda: evaluate_message(conversation, matching), 30))
    figures["live_cpu"] = cpu_seconds(lambda: evaluate_message(conversation, matching), 30)
    with CaptureQueriesContext(connection) as queries:
        evaluate_message(conversation, matching)
    figures["statements"] = len(queries.captured_queries)
    assert evaluate_message(conversation, matching, dry_run=True).reply == "matched please"
    figures.update(after_a_change(tenant, conversation, matching))
    figures.update(compile_figures(tenant))
    return figures


def cpu_seconds(function, repeat: int) -> float:
    started = time.process_time()
    for _ in range(repeat):
        function()
    return (time.process_time() - started) / repeat


def after_a_change(tenant: Tenant, conversation: Conversation, text: str, *, changes: int = 5) -> dict:
    """Save one rule (its commit starts the background build) and answer a message at once; medians
    over a few changes, and how many builds messages did meanwhile (the goal: none)."""
    settings.RULES_BUILD_IN_BACKGROUND = True
    compiled_on_messages = ruleset.BUILDS["message"]
    rule = Rule.objects.get(tenant=tenant, priority=0)
    firsts, builds = [], []
    for n in range(changes):
        rule.name = f"rule 0 (edit {n})"
        started = time.perf_counter()
        rule.save()
        firsts.append(timed(lambda: evaluate_message(conversation, text), 1)[0])
        while ruleset.cached(tenant.pk, ruleset.version_of(tenant.pk)) is None:
            time.sleep(0.001)
        builds.append(time.perf_counter() - started)
    settings.RULES_BUILD_IN_BACKGROUND = False
    return {
        "first_after": statistics.median(firsts),
        "background": statistics.median(builds),
        "message_builds": ruleset.BUILDS["message"] - compiled_on_messages,
    }


def compile_figures(tenant: Tenant) -> dict:
    """What the compile task spends, and a process without a copy building from the task's snapshot."""
    ruleset.forget(tenant.pk)
    task = ruleset.compile_and_share(tenant.pk) or 0.0
    ruleset.forget(tenant.pk)
    from_snapshot = timed(lambda: ruleset.ruleset_for(tenant), 1)[0]
    return {"task": task, "from_snapshot": from_snapshot}


def print_engine() -> None:
    print("\n1. Per-message evaluation (regex rules, no API call; medians; CPU = process time per message)")
    print(
        f"{'rules':>7} {'prefilter':>9} {'live, last rule':>16} {'live CPU':>12} {'SQL/msg':>8}"
        f" {'dry, no match':>14} {'dry, last rule':>15}"
    )
    compile_rows = []
    for count in (10, 100, 1_000, 10_000):
        for prefilter in (True, False):
            if count < 64 and not prefilter:
                continue
            f = engine_figures(count, prefilter=prefilter)
            label = "RE2 set" if prefilter and count >= 64 else "none"
            print(
                f"{count:>7} {label:>9} {ms(f['live_hit']):>16} {ms(f['live_cpu']):>12} {f['statements']:>8}"
                f" {ms(f['dry_miss']):>14} {ms(f['dry_hit']):>15}"
            )
            compile_rows.append((count, label, f))
    compiled.SET_THRESHOLD = 64
    print("\n   Compiling: a message in a process with no copy builds it; after a change it does not")
    print(
        f"{'rules':>7} {'prefilter':>9} {'no copy: msg':>14} {'compile task':>14} {'from snapshot':>14}"
        f" {'bg build':>12} {'1st msg after':>14} {'msg builds':>11}"
    )
    for count, label, f in compile_rows:
        print(
            f"{count:>7} {label:>9} {ms(f['cold']):>14} {ms(f['task']):>14} {ms(f['from_snapshot']):>14}"
            f" {ms(f['background']):>12} {ms(f['first_after']):>14} {f['message_builds']:>11}"
        )


def _price_widget(base_url: str) -> WidgetKey:
    """A tenant whose one rule answers "price" from the local API, and its widget key."""
    tenant = make_tenant("bench widget")
    api = Connection.objects.create(tenant=tenant, name="Prices", base_url=base_url)
    endpoint = Endpoint.objects.create(
        tenant=tenant,
        connection=api,
        name="Price",
        tool_name="price",
        path="/prices/{sku}",
        response_mapping={"current_price": "data.price.amount", "price_currency": "data.price.currency"},
    )
    rule = Rule.objects.create(tenant=tenant, name="Price", trigger_type="regex", pattern=r"\bprice\b", flags="i")
    actions = [
        {"type": "CALL_API", "endpoint": str(endpoint.id), "params": {"sku": "{sku}"}},
        {"type": "REPLY_TEXT", "template": "The current price is {current_price} {price_currency}."},
    ]
    replace_actions(rule, parse_actions(actions, tenant))
    return WidgetKey.objects.create(tenant=tenant, name="Bench", allowed_origins=[])


def widget_figures(base_url: str) -> None:
    settings.WIDGET_RATE_SESSION_MESSAGES = settings.WIDGET_RATE_IP_MESSAGES = "1000000/60"
    settings.WIDGET_RATE_IP_SESSIONS = "1000000/60"
    key = _price_widget(base_url)

    def session() -> tuple[Client, str]:
        client = Client(HTTP_HOST="127.0.0.1")
        body = {"widget_key": key.key, "variables": {"sku": "W-42"}}
        data = client.post("/widget/v1/sessions", json.dumps(body), content_type="application/json").json()
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {data['token']}"
        return client, f"/widget/v1/sessions/{data['session_id']}/messages"

    def one(client: Client, path: str) -> float:
        started = time.perf_counter()
        response = client.post(path, json.dumps({"text": "what's the price?"}), content_type="application/json")
        assert response.status_code == 200 and "12.5 EUR" in response.json()["reply"], response.content
        return time.perf_counter() - started

    raw = timed(lambda: http.send("GET", f"{base_url}/prices/W-42"), 200)
    client, path = session()
    one(client, path)  # warm up pools and the rule cache
    cpu_started = time.process_time()
    sequential = [one(client, path) for _ in range(200)]
    cpu = (time.process_time() - cpu_started) / len(sequential)  # the local API's server thread included

    print("\n2. Widget message endpoint, rule = CALL_API (local API) + REPLY_TEXT")
    print(f"   local API alone (integrations.http.send):  p50 {ms(statistics.median(raw))}  p95 {ms(_p95(raw))}")
    print(
        f"   POST /widget/v1/sessions/{{id}}/messages:   p50 {ms(statistics.median(sequential))}  "
        f"p95 {ms(_p95(sequential))}  → {1 / statistics.mean(sequential):7.1f} msg/s sequential, CPU {ms(cpu)}"
    )
    threads = 4
    sessions = [session() for _ in range(threads)]

    def worker(index: int) -> list[float]:
        client_, path_ = sessions[index]
        samples = [one(client_, path_) for _ in range(50)]
        connection.close()
        return samples

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        results = [s for batch in pool.map(worker, range(threads)) for s in batch]
    elapsed = time.perf_counter() - started
    print(
        f"   {threads} threads, 1 session each:               p50 {ms(statistics.median(results))}  → {len(results) / elapsed:7.1f} msg/s"
    )


def _p95(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.95) - 1]


def main() -> None:
    call_command("migrate", verbosity=0)
    # The compile task's work is measured in-process (compile_figures); nothing is sent to a broker.
    ruleset.queue.enqueue = lambda *args, **kwargs: True
    print(f"Database: {connection.vendor}; Python {sys.version.split()[0]}")
    print_engine()
    server = ThreadingHTTPServer(("127.0.0.1", 0), PriceAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        widget_figures(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
