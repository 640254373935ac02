"""Switchboard's LiveKit Agents worker (`python manage.py voice_worker`, SPEC §16).

The livekit dialer dispatches agent `<agent_code>` into room `call-<call id>` with the call id in the
dispatch metadata. LiveKit sends an explicit dispatch only to workers registered under that agent
name, and one `AgentServer` registers one name — so the worker runs one server per agent code (of the
tenants' active agents, refreshed every `VOICE_WORKER_REFRESH_SECONDS`), all in one event loop.

Each job (`entrypoint`) loads the call, waits for the callee, and runs `calls.voice.session` — §14's
runtime — on the room's audio with the speech plugins of `calls.voice.plugins`. Jobs run in child
processes by default (LiveKit's isolation: one call cannot stall another); the child sets Django up in
`prewarm`, which is why Django-dependent modules are imported inside the functions here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Iterable
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


def prewarm(proc: Any) -> None:
    """Runs once per job process before it takes jobs: Django, and the VAD model (slow to load)."""
    import django

    django.setup()
    from calls.voice import plugins

    proc.userdata["vad"] = plugins.load_vad()


def call_id_of(metadata: str) -> str:
    """The call id the dialer put into the dispatch metadata ("" when it is not ours)."""
    try:
        data = json.loads(metadata or "{}")
    except ValueError:
        return ""
    value = data.get("call_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


async def entrypoint(ctx: Any) -> None:
    """One dispatched call: the runtime's conversation on the callee's audio, then the outcome."""
    from livekit.agents import room_io

    from calls.dialers.livekit import CALLEE
    from calls.voice import plugins
    from calls.voice import session as voice

    call = await voice._in_thread(voice.load_call, call_id_of(ctx.job.metadata))
    if call is None:
        logger.warning("dispatch for an unknown or finished call", extra={"room": ctx.job.room.name})
        ctx.shutdown("no live call for this dispatch")
        return
    conversation = voice.CallConversation(call)
    agent = voice.CallAgent(conversation)
    speech = await voice._in_thread(plugins.speech_for, call.agent)
    session = voice.build_session(conversation, agent, vad=ctx.proc.userdata.get("vad"), **speech)

    async def report(reason: str) -> None:
        await voice._in_thread(voice.finish_call, call, conversation.end_reason or reason)

    ctx.add_shutdown_callback(report)
    session.on("close", lambda event: ctx.shutdown(f"session closed: {getattr(event, 'reason', '')}"))
    await ctx.connect()
    await ctx.wait_for_participant(identity=CALLEE)
    # Deleting the room on close hangs up the phone when the agent ends the call.
    options = room_io.RoomOptions(participant_identity=CALLEE, delete_room_on_close=True)
    await session.start(agent=agent, room=ctx.room, room_options=options)


def active_agent_codes(only: Iterable[str] = ()) -> list[str]:
    """The agent codes the worker registers: every tenant's active agents (optionally only `only`)."""
    from calls.models import ActiveStatus, Agent

    # Deliberately across tenants: one worker serves the deployment; each job loads its own call.
    codes = Agent.objects.filter(status=ActiveStatus.ACTIVE).values_list("agent_code", flat=True)
    wanted = set(only)
    return sorted({code for code in codes if not wanted or code in wanted})


def build_server(agent_code: str, *, executor: str, port: int = 0) -> Any:
    from livekit.agents import AgentServer, JobExecutorType

    server = AgentServer(
        job_executor_type=JobExecutorType(executor),
        setup_fnc=prewarm,
        ws_url=settings.LIVEKIT_URL or None,
        api_key=settings.LIVEKIT_API_KEY or None,
        api_secret=settings.LIVEKIT_API_SECRET or None,
        port=port,
    )
    server.rtc_session(entrypoint, agent_name=agent_code)
    return server


async def serve(only: Iterable[str], *, executor: str, refresh_seconds: float) -> None:
    """Run a server per agent code until SIGINT/SIGTERM; add servers for agents created meanwhile."""
    only = list(only)
    servers: dict[str, tuple[Any, asyncio.Task]] = {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        while not stop.is_set():
            codes = await asyncio.to_thread(active_agent_codes, only)
            for code in codes:
                if code not in servers:
                    server = build_server(code, executor=executor)
                    servers[code] = (server, asyncio.create_task(server.run(), name=f"voice-{code}"))
                    logger.info("voice worker registered agent %s", code)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=refresh_seconds)
    finally:
        # Drain: calls in progress finish before the worker exits (LiveKit sends new ones elsewhere).
        for server, task in servers.values():
            with contextlib.suppress(Exception):
                await server.drain()
                await server.aclose()
            task.cancel()
