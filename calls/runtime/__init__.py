"""The agent conversation runtime (SPEC §14): `start`, `respond`, `finish` over a rules Conversation.

Transports (REST, the admin's chat, the widget's REPLY_AI, the simulated dialer, the voice worker) call
these and nothing else. See docs/architecture.md ("calls.runtime").
"""

from __future__ import annotations

from calls.runtime.conversation import finish, respond, start
from calls.runtime.state import (
    NEEDS_PROVIDER,
    AgentRuntimeError,
    Turn,
    attach,
    has_agent,
    provider_or_error,
    session_of,
)

__all__ = [
    "NEEDS_PROVIDER",
    "AgentRuntimeError",
    "Turn",
    "attach",
    "finish",
    "has_agent",
    "provider_or_error",
    "respond",
    "session_of",
    "start",
]
