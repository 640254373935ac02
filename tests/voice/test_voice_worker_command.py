"""`manage.py voice_worker`: its settings checks and what it registers (no LiveKit server needed)."""

from __future__ import annotations

import asyncio
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from calls.models import Agent
from calls.voice.worker import active_agent_codes, build_server, call_id_of


@pytest.fixture
def livekit_env(settings):
    settings.LIVEKIT_URL = "wss://acme.livekit.cloud"
    settings.LIVEKIT_API_KEY = "APIworker"
    settings.LIVEKIT_API_SECRET = "worker-secret-never-printed-0123456789"
    return settings


def test_check_lists_the_active_agent_codes_of_every_tenant(livekit_env, tenant, other_tenant, voice_agent):
    Agent.objects.create(tenant=other_tenant, name="B", agent_code="billing")
    Agent.objects.create(tenant=other_tenant, name="Same code", agent_code="asha-collections")
    Agent.objects.create(tenant=tenant, name="Off", agent_code="retired", status="inactive")
    out = StringIO()
    call_command("voice_worker", "--check", stdout=out)
    text = out.getvalue()
    assert "Agent codes: asha-collections, billing" in text
    assert "Speech: STT deepgram, TTS openai, VAD silero" in text
    assert "LiveKit: wss://acme.livekit.cloud" in text
    assert "worker-secret" not in text


def test_agent_codes_can_be_limited(voice_agent, other_tenant):
    Agent.objects.create(tenant=other_tenant, name="B", agent_code="billing")
    assert active_agent_codes(["billing", "unknown"]) == ["billing"]


def test_missing_livekit_settings_stop_the_worker(settings, db):
    settings.LIVEKIT_URL, settings.LIVEKIT_API_KEY, settings.LIVEKIT_API_SECRET = "wss://x.livekit.cloud", "", ""
    with pytest.raises(CommandError, match="set LIVEKIT_API_KEY, LIVEKIT_API_SECRET"):
        call_command("voice_worker", "--check")


@pytest.mark.parametrize(("name", "value"), [("VOICE_STT", "whisper.cpp"), ("VOICE_TTS", "nope"), ("VOICE_VAD", "x")])
def test_unknown_speech_providers_stop_the_worker(livekit_env, db, name, value):
    setattr(livekit_env, name, value)
    with pytest.raises(CommandError, match=f"{name}='{value}' is not one of"):
        call_command("voice_worker", "--check")


def test_a_server_registers_under_the_agent_code(livekit_env):
    server = build_server("asha-collections", executor="thread")
    assert server._agent_name == "asha-collections"  # what LiveKit matches dispatches against
    assert server._ws_url == "wss://acme.livekit.cloud"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [('{"call_id": "abc", "metadata": {}}', "abc"), ("", ""), ("not json", ""), ("[1]", ""), ('{"call_id": 5}', "")],
)
def test_the_call_id_comes_from_the_dispatch_metadata(metadata, expected):
    assert call_id_of(metadata) == expected


def test_the_calls_session_never_generates_ahead_of_the_caller(db):
    """A runtime turn runs tools and is recorded: LiveKit's preemptive generation must be off."""
    from calls.voice import session as voice

    async def build():  # as in the worker's job: inside its event loop
        conversation = voice.CallConversation(call=None)  # type: ignore[arg-type]
        return voice.build_session(conversation, voice.CallAgent(conversation))

    built = asyncio.run(build())
    assert built.options.turn_handling["preemptive_generation"]["enabled"] is False
    assert isinstance(built.llm, voice.RuntimeLLM)
