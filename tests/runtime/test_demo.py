"""The demo tenant's talking agent: a whole call over the demo shop API served by this project."""

from __future__ import annotations

import pytest

from calls import runtime
from calls.dialers import get_dialer
from calls.models import Agent, SipTrunk
from rules.models import Channel, Conversation
from tenants.demo import load_demo


@pytest.fixture
def demo(live_server, monkeypatch, transactional_db):
    monkeypatch.setenv("WEB_PORT", live_server.url.rsplit(":", 1)[1])
    tenant, _ = load_demo()
    return tenant


def test_the_demo_agent_answers_from_the_demo_api(demo, llm):
    agent = Agent.objects.get(tenant=demo, agent_code="order-assistant")
    trunk = SipTrunk.objects.get(tenant=demo, name="Demo trunk (scripted caller)")
    assert get_dialer("simulated").validate_config(trunk.dialer_config) == trunk.dialer_config
    conversation = Conversation.objects.create(tenant=demo, channel=Channel.VOICE, variables={"customer_name": "Ana"})
    runtime.attach(conversation, agent)

    assert runtime.start(conversation).say == [
        "Hello Ana, this is Sam from the demo shop. Do you have a minute to talk about your order?"
    ]
    llm.call_tool("get_order_status", {"orderId": "1042"}).say("Anything else?")
    turn = runtime.respond(conversation, trunk.dialer_config["caller"]["script"][1])
    assert turn.tool_calls[0]["status"] == "success"
    assert turn.say[0] == "Let me look up that order."
    assert turn.say[1].startswith("Order 1042 is ") and "expected delivery 2026-11-" in turn.say[1]


def test_loading_the_demo_twice_keeps_one_talking_agent(demo):
    load_demo()
    assert Agent.objects.filter(tenant=demo, agent_code="order-assistant").count() == 1
    assert Agent.objects.get(tenant=demo, agent_code="order-assistant").tools.count() == 2
