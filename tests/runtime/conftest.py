"""Fixtures of the agent-runtime suite: an agent over the local customer API (`tests.support.customer_api`)."""

from __future__ import annotations

import pytest

from calls import runtime
from calls.models import Agent
from rules.models import Channel, Conversation
from tests.calls.conftest import calls_worker, fast_calls  # noqa: F401  (fixtures of the calls suite)
from tests.support.llm_server import LLM_KEY

METADATA = {"customer_name": "Rahul", "amount_due": "150000", "account": "AC-42", "date_of_birth": "1990-05-17"}
ANALYSIS = {
    "dispositions": ["promised_to_pay", "refused", "callback_requested"],
    "extract": [
        {"name": "preferred_date", "type": "date", "description": "the date the customer promised to pay"},
        {"name": "amount", "type": "number", "description": "the amount promised"},
        {"name": "channel", "type": "enum", "values": ["upi", "card"], "description": "how they will pay"},
    ],
}


@pytest.fixture
def voice_agent(tenant, customer_endpoints) -> Agent:
    agent = Agent.objects.create(
        tenant=tenant,
        name="Asha",
        agent_code="asha",
        prompt="You are Asha from Acme Finance calling {{customer_name}} about {{amount_due}} rupees.",
        first_message="Hello {{customer_name}}, this is Asha from Acme Finance about your payment of {{amount_due}} rupees.",
        input_schema={"fields": list(METADATA), "sample_context": {}},
        analysis=ANALYSIS,
        verification=["date_of_birth"],
        end_call_message="Thank you {{customer_name}}, goodbye.",
    )
    agent.tools.set(customer_endpoints.values())
    return agent


@pytest.fixture
def talk(tenant, voice_agent):
    """A conversation held by the agent, with the metadata as its variables."""
    conversation = Conversation.objects.create(tenant=tenant, channel=Channel.VOICE, variables=dict(METADATA))
    runtime.attach(conversation, voice_agent)
    return conversation


@pytest.fixture
def llm_for_workers(llm, monkeypatch):
    """The scripted provider, also for worker processes started after this fixture (they read the env)."""
    monkeypatch.setenv("LLM_BASE_URL", llm.base_url)
    monkeypatch.setenv("LLM_API_KEY", LLM_KEY)
    monkeypatch.setenv("LLM_MODEL", "test-model")
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")
    return llm
