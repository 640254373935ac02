"""The demo tenant `make run` loads: its agent has the demo shop API's endpoints as tools."""

from __future__ import annotations

from calls.models import Agent
from integrations.models import Connection, Endpoint
from tenants.demo import load_demo
from tests.support.api import bearer_client


def test_demo_agent_lists_the_demo_endpoints_as_tools_and_reloading_keeps_them(db, monkeypatch):
    monkeypatch.setenv("WEB_PORT", "8123")
    tenant, _ = load_demo()
    agent = Agent.objects.get(tenant=tenant, agent_code="payment-reminder")
    # a tool the user attached themselves survives the next `make run`
    own = Endpoint.objects.create(
        tenant=tenant, connection=Connection.objects.get(tenant=tenant), name="Own", tool_name="own_tool", path="/x"
    )
    agent.tools.add(own)

    _, raw_key = load_demo()

    answer = bearer_client(raw_key).get(f"/api/v1/agents/{agent.pk}/tools")
    assert answer.status_code == 200
    tools = {tool["function"]["name"]: tool for tool in answer.json()["tools"]}
    assert sorted(tools) == ["get_order_status", "get_price", "own_tool"]
    assert tools["get_order_status"]["function"]["parameters"]["required"] == ["orderId"]
    assert tools["get_order_status"]["voice"]["on_start"] == "Let me look up that order."
    assert agent.tools.count() == 3
