"""Benchmark the latency the voice worker adds per caller turn, text-only (run by hand, prints figures).

    .venv/bin/python bench/voice.py [--turns 200]          # SQLite in a temporary folder

Each turn goes through what the worker runs on a call: LiveKit Agents' `AgentSession.run(user_input=...)`
→ `calls.voice.session.RuntimeLLM` → `calls.runtime.respond` (in a worker thread) → the reply back
through the session's pipeline. The model is a scripted OpenAI-compatible server on 127.0.0.1 that
answers plain text. Printed per turn: the whole run, the time inside `runtime.respond` (the runtime's
work and the model's round trip), and their difference — what the worker and LiveKit Agents add on
top (thread hop, LLM-stream plumbing, the session's turn handling). No audio: STT, TTS and network
latency to LiveKit come on top in a real call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
_tmp = tempfile.mkdtemp(prefix="swb-bench-voice-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_tmp}/bench.sqlite3")
os.environ.setdefault("OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from calls.models import Agent, Call, SipTrunk  # noqa: E402
from calls.voice import session as voice  # noqa: E402
from rules.models import Channel, Conversation  # noqa: E402
from tenants.models import Tenant  # noqa: E402
from tests.support.http_servers import HttpServer  # noqa: E402
from tests.support.llm_server import ScriptedLLM  # noqa: E402


def make_call() -> Call:
    tenant = Tenant.objects.create(name="Bench", slug=f"bench-{time.time_ns()}")
    agent = Agent.objects.create(tenant=tenant, name="Asha", agent_code="asha", prompt="You are Asha.")
    trunk = SipTrunk.objects.create(tenant=tenant, name="T", trunk_phone="+14155550123")
    conversation = Conversation.objects.create(tenant=tenant, channel=Channel.VOICE, variables={})
    return Call.objects.create(
        tenant=tenant, agent=agent, sip_trunk=trunk, phone_number="+14155552671", conversation=conversation
    )


async def run_turns(turns: int) -> list[tuple[float, float]]:
    call = await asyncio.to_thread(make_call)
    conversation = voice.CallConversation(call)
    agent = voice.CallAgent(conversation)
    figures = []
    async with voice.build_session(conversation, agent) as session:
        await session.start(agent)
        for number in range(turns):
            started = time.perf_counter()
            await session.run(user_input=f"Caller line {number}")
            total = time.perf_counter() - started
            if conversation.ended:
                raise SystemExit(f"the conversation ended after {number + 1} turns: {conversation.end_reason}")
            figures.append((total, conversation.timings[-1].runtime_seconds))
    return figures


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    with HttpServer() as server:
        llm = ScriptedLLM(server)
        llm.reply_text = "Thank you, I have noted that."
        settings.LLM_BASE_URL, settings.LLM_API_KEY, settings.LLM_MODEL = llm.base_url, "sk-bench", "bench"
        settings.LLM_MAX_RETRIES = 0
        # The session's max_turns bounds a conversation: several conversations of 25 turns each.
        figures: list[tuple[float, float]] = []
        while len(figures) < args.turns:
            figures += asyncio.run(run_turns(min(25, args.turns - len(figures))))
    warm = figures[5:] or figures
    totals = [t for t, _ in warm]
    inner = [r for _, r in warm]
    added = [t - r for t, r in warm]
    print(f"turns measured: {len(warm)} (after 5 warm-up turns)")
    for label, values in (("whole turn", totals), ("runtime.respond", inner), ("added by the worker", added)):
        print(
            f"{label:>22}: p50 {pct(values, 0.5):7.2f} ms   p95 {pct(values, 0.95):7.2f} ms   "
            f"mean {statistics.mean(values) * 1000:7.2f} ms"
        )


if __name__ == "__main__":
    main()
