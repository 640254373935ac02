"""The hook through which an agent answers a conversation (rules cannot import calls: calls fills it in).

`calls` registers its runtime in `CallsConfig.ready()`; the conversation API and the widget's
`REPLY_AI` with an `"agent"` call it through `agent_runtime()`. Errors are domain errors (a code, not
a status) with a finer `reason`: `no_provider`, `ended`, `busy`, `unavailable` (conflict), `not_found`,
`no_agent`, `inactive` (invalid).
"""

from __future__ import annotations

from typing import Any, Protocol

from rules.models import Conversation
from tenants.errors import DomainError, ErrorCode

_CODES = dict.fromkeys(("no_provider", "ended", "busy", "unavailable"), ErrorCode.CONFLICT)
_CODES["not_found"] = ErrorCode.NOT_FOUND


class AgentError(DomainError):
    """The agent cannot answer; `reason` says why (see the module docstring), the message is safe to show."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, code=_CODES.get(reason, ErrorCode.INVALID))
        self.reason = reason


class AgentRuntime(Protocol):
    def check_agent(self, tenant: Any, agent_id: Any, *, need_provider: bool = True) -> Any:
        """The tenant's active agent `agent_id`, ready to talk (a provider is configured); else AgentError."""

    def open(self, conversation: Conversation, agent: Any) -> dict:
        """Let `agent` hold `conversation`; returns its first turn (`reply`, `say`, `tool_calls`, `ended`)."""

    def held_by_agent(self, conversation: Conversation) -> bool: ...

    def respond(self, conversation: Conversation, text: str) -> dict:
        """The agent's turn answering `text`."""

    def end(self, conversation: Conversation) -> dict:
        """End the conversation; its analysis."""

    def reply(self, conversation: Conversation, agent_id: Any, text: str) -> str:
        """REPLY_AI with an agent: the agent's turn for `text` (the engine has recorded `text`)."""


_runtime: AgentRuntime | None = None


def register(runtime: AgentRuntime) -> None:
    global _runtime
    _runtime = runtime


def agent_runtime() -> AgentRuntime:
    if _runtime is None:
        raise AgentError("unavailable", "agents are not available in this deployment")
    return _runtime
