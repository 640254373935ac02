"""Fixtures of the agent-runtime suite: a local customer API that records what it got, an agent over it."""

from __future__ import annotations

import pytest

from calls import runtime
from calls.models import Agent
from integrations.models import Burden, Connection, Endpoint
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
def customer_api(make_http_server):
    """The tenant's API: /balance answers a balance, /payments records a payment; every request is recorded."""
    server = make_http_server()
    server.route("GET", "/balance", lambda r: (200, {}, {"balance": 150000, "currency": "INR"}))
    server.route("POST", "/payments", lambda r: (201, {}, {"payment_id": "P-1", "received": r.json()}))
    return server


@pytest.fixture
def endpoints(tenant, customer_api) -> dict[str, Endpoint]:
    connection = Connection.objects.create(
        tenant=tenant, name="Customer API", base_url=customer_api.base_url, retry={"max_retries": 0}
    )
    balance = Endpoint.objects.create(
        tenant=tenant,
        connection=connection,
        name="Balance",
        tool_name="get_balance",
        description="Look up the customer's current balance.",
        method="GET",
        path="/balance",
        query={"account": "{{account}}"},
        parameters=[{"name": "account", "location": "query", "type": "string", "required": True}],
        response_template="Your current balance is {{response.balance}} rupees.",
        say_on_start="Let me check that for you.",
        burden=Burden.CONVERSATIONAL,
    )
    payment = Endpoint.objects.create(
        tenant=tenant,
        connection=connection,
        name="Schedule payment",
        tool_name="schedule_payment",
        description="Schedule a payment",
        method="POST",
        path="/payments",
        body_type="json",
        body_template='{"amount": {{amount}}, "date": "{{date}}"}',
        parameters=[
            {"name": "amount", "location": "body", "type": "number", "required": True},
            {"name": "date", "location": "body", "type": "string", "required": True},
        ],
        response_template="Your payment of {{response.received.amount}} is scheduled.",
        burden=Burden.CONFIRMED,
    )
    statement = Endpoint.objects.create(
        tenant=tenant,
        connection=connection,
        name="Statement",
        tool_name="get_statement",
        description="Read the account statement.",
        method="GET",
        path="/balance",
        burden=Burden.VERIFIED,
    )
    return {"balance": balance, "payment": payment, "statement": statement}


@pytest.fixture
def voice_agent(tenant, endpoints) -> Agent:
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
    agent.tools.set(endpoints.values())
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
