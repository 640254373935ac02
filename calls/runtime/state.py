"""The runtime's shared pieces: its errors (with codes), the Turn it returns, and the agent session.

A conversation is held by an agent when it has an `AgentSession` (calls.models): created by
`attach(conversation, agent)` (REST, admin, widget) or, for a call's conversation, from the call's
agent on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from calls.models import Agent, AgentSession, Call
from rules import ai
from rules.agents import AgentError
from rules.models import Conversation

NEEDS_PROVIDER = "this agent needs an AI provider"


class AgentRuntimeError(AgentError):
    """The runtime cannot do what was asked; `code` says why (views map codes to statuses)."""


@dataclass
class Turn:
    """One agent turn: what it said (in order), the tool calls it made, and whether it ended the call."""

    say: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    ended: bool = False
    end_reason: str = ""

    @property
    def reply(self) -> str:
        return " ".join(text for text in self.say if text)

    def to_dict(self) -> dict[str, Any]:
        return {"reply": self.reply, "say": list(self.say), "tool_calls": list(self.tool_calls), "ended": self.ended}


def provider_or_error(tenant: Any) -> ai.AIProvider:
    """The tenant's AI provider; AgentRuntimeError("no_provider") when none is configured."""
    provider = ai.provider_for(tenant)
    if provider is None:
        raise AgentRuntimeError("no_provider", NEEDS_PROVIDER)
    return provider


def attach(conversation: Conversation, agent: Agent) -> AgentSession:
    """Make `agent` hold `conversation` (same tenant); returns its session (the existing one if any)."""
    if agent.tenant_id != conversation.tenant_id:
        raise ValueError("the agent belongs to another tenant")
    session, _ = AgentSession.objects.get_or_create(
        conversation=conversation, defaults={"tenant_id": conversation.tenant_id, "agent": agent}
    )
    return session


def session_of(conversation: Conversation) -> AgentSession:
    """The conversation's agent session; a call's conversation gets one from the call's agent."""
    session = AgentSession.objects.select_related("agent", "agent__tenant").filter(conversation=conversation).first()
    if session is not None:
        return session
    call = Call.objects.filter(conversation=conversation).select_related("agent").first()
    if call is None:
        raise AgentRuntimeError("no_agent", "this conversation is not held by an agent")
    return attach(conversation, call.agent)


def has_agent(conversation: Conversation) -> bool:
    """Whether an agent holds the conversation (it has an agent session)."""
    return AgentSession.objects.filter(conversation=conversation).exists()


class Clock:
    """Strictly increasing timestamps for the messages of one turn, so the transcript keeps their order."""

    def __init__(self) -> None:
        self.last: datetime | None = None

    def next(self) -> datetime:
        now = timezone.now()
        if self.last is not None and now <= self.last:
            now = self.last + timedelta(microseconds=1)
        self.last = now
        return now
