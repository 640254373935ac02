"""calls.runtime behind rules.agents' hook: what the conversation API and the widget call."""

from __future__ import annotations

import uuid
from typing import Any

from calls import runtime
from calls.models import ActiveStatus, Agent
from calls.runtime.state import provider_or_error
from rules.agents import AgentError
from rules.models import Conversation
from tenants import scoping


class RuntimeHook:
    def check_agent(self, tenant: Any, agent_id: Any, *, need_provider: bool = True) -> Agent:
        try:
            key = uuid.UUID(str(agent_id))
        except ValueError:
            raise AgentError("not_found", "Agent not found") from None
        agent = scoping.for_tenant(Agent, tenant).filter(pk=key).first()
        if agent is None:
            raise AgentError("not_found", "Agent not found")
        if agent.status != ActiveStatus.ACTIVE:
            raise AgentError("inactive", "Agent is not active")
        if need_provider:
            provider_or_error(tenant)
        return agent

    def open(self, conversation: Conversation, agent: Agent) -> dict:
        runtime.attach(conversation, agent)
        return runtime.start(conversation).to_dict()

    def held_by_agent(self, conversation: Conversation) -> bool:
        return runtime.has_agent(conversation)

    def respond(self, conversation: Conversation, text: str) -> dict:
        return runtime.respond(conversation, text).to_dict()

    def end(self, conversation: Conversation) -> dict:
        return runtime.finish(conversation)

    def reply(self, conversation: Conversation, agent_id: Any, text: str) -> str:
        """The widget's REPLY_AI with an agent: the agent answers `text` (already recorded by the engine)."""
        if not runtime.has_agent(conversation):
            runtime.attach(conversation, self.check_agent(conversation.tenant, agent_id))
        return runtime.respond(conversation, text, record_caller=False).reply
