"""Benchmark the agent runtime's own time per turn (run by hand, prints figures).

    .venv/bin/python bench/runtime.py [--turns 300]            # SQLite in a temporary folder
    DATABASE_URL=postgres://... .venv/bin/python bench/runtime.py

Each turn is `calls.runtime.respond`: the caller's words in, the model (a scripted OpenAI-compatible
server on 127.0.0.1) asks for one tool, the tool calls a local API (also on 127.0.0.1), the model
answers. The time spent inside `integrations.http.send` — the model's and the tool's network round
trips — is measured and subtracted, so what is printed is the platform's own work: loading the
session, the prompt and tools, the history, argument validation, the executor's rendering, logs and
messages. Agents with 1 and with 20 tools; a new conversation every 10 turns. Goal: ≤ 15 ms at p50.
Wall time includes waiting for the database; CPU time is this process's own work, which a busy
shared machine disturbs less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="swb-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_tmp}/bench.sqlite3")
os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from calls import runtime  # noqa: E402
from calls.models import Agent  # noqa: E402
from integrations import http  # noqa: E402
from integrations.models import Connection, Endpoint  # noqa: E402
from rules.models import Channel, Conversation  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tests.support.http_servers import HttpServer  # noqa: E402
from tests.support.llm_server import ScriptedLLM  # noqa: E402

network_seconds = 0.0
network_cpu_seconds = 0.0
_send = http.send


def timed_send(*args, **kwargs):
    """integrations.http.send, with its wall and CPU time added up (subtracted per turn)."""
    global network_seconds, network_cpu_seconds
    started, cpu = time.perf_counter(), time.process_time()
    try:
        return _send(*args, **kwargs)
    finally:
        network_seconds += time.perf_counter() - started
        network_cpu_seconds += time.process_time() - cpu


def make_agent(tenant: Tenant, api: HttpServer, tools: int) -> Agent:
    connection = Connection.objects.create(tenant=tenant, name=f"API {tools}", base_url=api.base_url)
    agent = Agent.objects.create(
        tenant=tenant,
        name=f"Agent {tools}",
        agent_code=f"agent-{tools}",
        prompt="You are Asha calling {{customer_name}} about {{amount_due}}.",
        analysis={"dispositions": ["paid"], "extract": [{"name": "date", "type": "date"}]},
    )
    for n in range(tools):
        endpoint = Endpoint.objects.create(
            tenant=tenant,
            connection=connection,
            name=f"Tool {n}",
            tool_name=f"tool_{tools}_{n}",
            description=f"Look up thing number {n} of the customer's account.",
            path="/balance",
            query={"account": "{{account}}"},
            parameters=[{"name": "account", "location": "query", "type": "string", "required": True}],
            response_template="Your balance is {{response.balance}} rupees.",
        )
        agent.tools.add(endpoint)
    return agent


def run(agent: Agent, llm: ScriptedLLM, turns: int) -> tuple[list[float], list[float]]:
    """Per turn: the platform's wall time and its CPU time (ms), the HTTP round trips excluded."""
    global network_seconds, network_cpu_seconds
    tool_name = agent.tools.order_by("tool_name").first().tool_name
    own_ms: list[float] = []
    cpu_ms: list[float] = []
    conversation = None
    for turn in range(turns):
        if turn % 10 == 0:
            variables = {"customer_name": "Rahul", "amount_due": "150000"}
            conversation = Conversation.objects.create(tenant=agent.tenant, channel=Channel.VOICE, variables=variables)
            runtime.attach(conversation, agent)
        llm.call_tool(tool_name, {"account": "AC-42"}).say("Anything else I can help with?")
        network_seconds = network_cpu_seconds = 0.0
        started, cpu = time.perf_counter(), time.process_time()
        result = runtime.respond(conversation, "What is my balance? Account AC-42.")
        total, total_cpu = time.perf_counter() - started, time.process_time() - cpu
        assert result.tool_calls[0]["status"] == "success", result.tool_calls
        own_ms.append((total - network_seconds) * 1000)
        cpu_ms.append((total_cpu - network_cpu_seconds) * 1000)
    return own_ms, cpu_ms


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    http.send = timed_send
    settings.LLM_MAX_RETRIES = 0
    with HttpServer() as llm_server, HttpServer() as api:
        api.route("GET", "/balance", lambda r: (200, {}, {"balance": 150000}))
        llm = ScriptedLLM(llm_server)
        settings.LLM_BASE_URL, settings.LLM_API_KEY, settings.LLM_MODEL = llm.base_url, "sk-bench", "bench"
        tenant = Tenant.objects.create(name="Bench", slug=f"bench-{int(time.time())}")
        print(f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}; {args.turns} turns each")
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times suffer on a busy machine)")
        print("platform time per turn, network to the model and the tool excluded (ms):")
        print("tools  wall p50  wall p99  wall mean  cpu p50  cpu p99")
        for tools in (1, 20):
            agent = make_agent(tenant, api, tools)
            run(agent, llm, 20)  # warm-up: pools, caches, first queries
            own, cpu = run(agent, llm, args.turns)
            print(
                f"{tools:5d}  {percentile(own, 50):8.2f}  {percentile(own, 99):8.2f}  {statistics.mean(own):9.2f}"
                f"  {percentile(cpu, 50):7.2f}  {percentile(cpu, 99):7.2f}"
            )


if __name__ == "__main__":
    main()
