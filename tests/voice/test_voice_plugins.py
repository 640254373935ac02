"""The speech plugins the VOICE_* settings choose, built with the agent's language and voice (no network)."""

from __future__ import annotations

import pytest

from calls.models import Agent
from calls.voice import plugins


@pytest.fixture(autouse=True)
def provider_keys(monkeypatch):
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-test-key")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")


def agent(**fields) -> Agent:
    return Agent(name="Asha", agent_code="asha", **fields)


def test_deepgram_hears_the_agents_language_and_openai_speaks_with_its_voice(settings):
    settings.VOICE_STT, settings.VOICE_TTS = "deepgram", "openai"
    speech = plugins.speech_for(agent(language="en-IN", voice="shimmer"))
    assert type(speech["stt"]).__module__.startswith("livekit.plugins.deepgram")
    assert speech["stt"]._opts.language == "en-IN"
    assert type(speech["tts"]).__module__.startswith("livekit.plugins.openai")
    assert speech["tts"]._opts.voice == "shimmer"


def test_openai_stt_takes_the_language_without_its_region_and_deepgram_tts_the_voice_model(settings):
    settings.VOICE_STT, settings.VOICE_TTS = "openai", "deepgram"
    speech = plugins.speech_for(agent(language="hi-IN", voice="aura-2-thalia-en"))
    assert speech["stt"]._opts.languages == ["hi"]
    assert speech["tts"]._opts.model == "aura-2-thalia-en"


def test_defaults_when_the_agent_leaves_voice_and_language_empty(settings):
    settings.VOICE_STT, settings.VOICE_TTS = "deepgram", "openai"
    speech = plugins.speech_for(agent(language="", voice=""))
    assert speech["stt"]._opts.language == "en-US"
    assert speech["tts"]._opts.voice == "alloy"


def test_no_vad_is_a_choice(settings):
    settings.VOICE_VAD = "none"
    assert plugins.load_vad() is None
