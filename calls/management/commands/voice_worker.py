"""`python manage.py voice_worker`: Switchboard's LiveKit Agents worker (a thin adapter over calls.voice)."""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from calls.dialers import livekit_client

REQUIRED = ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")


class Command(BaseCommand):
    help = "Run the voice worker: takes LiveKit dispatches for the tenants' agent codes and holds the calls."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--agent-code", action="append", default=[], help="Only these agent codes (repeatable; default all active)"
        )
        parser.add_argument(
            "--executor",
            choices=["process", "thread"],
            default=settings.VOICE_WORKER_EXECUTOR,
            help="Run each call in its own process (default, isolated) or thread",
        )
        parser.add_argument("--check", action="store_true", help="Print what would run, check settings, and exit")

    def handle(self, *args, agent_code: list[str], executor: str, check: bool, **options) -> None:
        if not livekit_client.installed():
            raise CommandError(livekit_client.INSTALL_HINT)
        from calls.voice import plugins, worker

        try:
            plugins.check_settings()
        except plugins.PluginError as exc:
            raise CommandError(str(exc)) from None
        missing = [name for name in REQUIRED if not getattr(settings, name)]
        if missing:
            raise CommandError(f"set {', '.join(missing)} (the LiveKit project the worker registers with)")
        codes = worker.active_agent_codes(agent_code)
        self.stdout.write(f"LiveKit: {settings.LIVEKIT_URL}")
        self.stdout.write(f"Speech: STT {settings.VOICE_STT}, TTS {settings.VOICE_TTS}, VAD {settings.VOICE_VAD}")
        self.stdout.write(f"Agent codes: {', '.join(codes) if codes else '(none active yet; checked every minute)'}")
        if check:
            return
        asyncio.run(worker.serve(agent_code, executor=executor, refresh_seconds=settings.VOICE_WORKER_REFRESH_SECONDS))
