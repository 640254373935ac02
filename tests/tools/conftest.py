"""Fixtures of the agent-tools suite: endpoints on a real local server, agents holding them, conversations."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from calls.models import Agent, SipTrunk
from integrations.models import Connection, Endpoint
from rules.models import Conversation

NO_RETRY = {"max_retries": 0, "base_delay": 0.01, "max_delay": 0.05}


@pytest.fixture(autouse=True)
def _clear_cache(db):
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def make_endpoint(http_server):
    """`make_endpoint(tenant, tool_name, **fields)` → an endpoint of a connection to the local server."""

    def make(tenant, tool_name: str, **fields) -> Endpoint:
        connection, _ = Connection.objects.get_or_create(
            tenant=tenant, name="Bank API", defaults={"base_url": http_server.base_url, "retry": NO_RETRY}
        )
        fields.setdefault("name", tool_name.replace("_", " ").capitalize())
        fields.setdefault("path", f"/{tool_name}")
        return Endpoint.objects.create(tenant=tenant, connection=connection, tool_name=tool_name, **fields)

    return make


@pytest.fixture
def make_agent(db):
    def make(tenant, *, tools=(), **fields) -> Agent:
        fields = {"name": "Teller", "agent_code": "teller", "input_schema": {"fields": ["customer_name"]}, **fields}
        agent = Agent.objects.create(tenant=tenant, **fields)
        agent.tools.set(tools)
        return agent

    return make


@pytest.fixture
def trunk(tenant) -> SipTrunk:
    return SipTrunk.objects.create(
        tenant=tenant,
        name="Main",
        trunk_phone="+14155550123",
        max_cps=10,
        max_channels=10,
        dialer_config={"ring_seconds": 30, "talk_seconds": 30, "outcome": "completed"},
    )


@pytest.fixture
def conversation(tenant) -> Conversation:
    return Conversation.objects.create(tenant=tenant, channel="voice", variables={"customer_name": "Ada"})
