"""Speech plugins of the voice worker, chosen by name in settings (`VOICE_STT`, `VOICE_TTS`, `VOICE_VAD`).

Each name maps to a small factory over a LiveKit Agents plugin, given the agent so its `language`
(speech-to-text) and `voice` (text-to-speech) are used. Adding a provider is one function and one line
in a table. Provider keys are read by the plugins from their usual environment variables
(`DEEPGRAM_API_KEY`, `OPENAI_API_KEY`, and `OPENAI_BASE_URL` for an OpenAI-compatible speech server).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from calls.models import Agent


class PluginError(ValueError):
    """A speech setting names a provider that does not exist or is not installed."""


def deepgram_stt(agent: Agent) -> Any:
    from livekit.plugins import deepgram

    return deepgram.STT(model=settings.VOICE_STT_MODEL or "nova-3", language=agent.language or "en-US")


def openai_stt(agent: Agent) -> Any:
    from livekit.plugins import openai

    # Whisper-style models take the ISO 639-1 part of a BCP 47 tag ("en-IN" → "en").
    language = (agent.language or "en").split("-")[0].lower()
    return openai.STT(model=settings.VOICE_STT_MODEL or "gpt-4o-mini-transcribe", language=language)


def openai_tts(agent: Agent) -> Any:
    from livekit.plugins import openai

    return openai.TTS(model=settings.VOICE_TTS_MODEL or "gpt-4o-mini-tts", voice=agent.voice or "alloy")


def deepgram_tts(agent: Agent) -> Any:
    from livekit.plugins import deepgram

    # Deepgram names a voice by its model ("aura-2-thalia-en"): the agent's voice is that name.
    return deepgram.TTS(model=agent.voice or settings.VOICE_TTS_MODEL or "aura-2-andromeda-en")


def silero_vad() -> Any:
    from livekit.plugins import silero

    return silero.VAD.load()


STT = {"deepgram": deepgram_stt, "openai": openai_stt}
TTS = {"openai": openai_tts, "deepgram": deepgram_tts}
VAD = {"silero": silero_vad, "none": lambda: None}


def _choice(kind: str, table: dict, name: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise PluginError(f"VOICE_{kind}={name!r} is not one of: {', '.join(sorted(table))}") from None


def check_settings() -> None:
    """Refuse to start a worker whose speech settings name unknown providers (ImproperlyConfigured-style)."""
    _choice("STT", STT, settings.VOICE_STT)
    _choice("TTS", TTS, settings.VOICE_TTS)
    _choice("VAD", VAD, settings.VOICE_VAD)


def load_vad() -> Any:
    """The voice-activity detector (loaded once per worker process: its model takes a moment)."""
    return _choice("VAD", VAD, settings.VOICE_VAD)()


def speech_for(agent: Agent) -> dict[str, Any]:
    """The `stt` and `tts` of an AgentSession for `agent` (its language and voice)."""
    return {
        "stt": _choice("STT", STT, settings.VOICE_STT)(agent),
        "tts": _choice("TTS", TTS, settings.VOICE_TTS)(agent),
    }
