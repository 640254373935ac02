"""The demo tenant's talking agent: a whole call over the demo shop API served by this project."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from calls import runtime
from calls.dialers import get_dialer
from calls.models import Agent, SipTrunk
from calls.webhooks import hex_signature
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


@pytest.mark.worker
def test_demo_call_prints_a_whole_call(demo, live_server, settings, llm_for_workers, calls_worker):
    settings.PUBLIC_BASE_URL = live_server.url
    llm = llm_for_workers
    llm.say("Great! How can I help?")
    llm.call_tool("get_order_status", {"orderId": "1042"}).say("Anything else?")
    llm.call_tool("end_call", {"reason": "done"})
    llm.json({"disposition": "question_answered", "summary": "Ana asked about order 1042.", "sentiment": "positive",
              "extracted": {"order_id": "1042", "satisfied": "yes"}})  # fmt: skip
    out = StringIO()

    call_command("demo_call", "--wait", "60", stdout=out)

    printed = out.getvalue()
    assert "agent: Hello Ana Pérez, this is Sam from the demo shop." in printed
    assert "caller: Yes please. Can you tell me where order 1042 is?" in printed
    assert "tool: get_order_status: success" in printed and "agent: Order 1042 is " in printed
    assert "agent: Thanks Ana Pérez, have a great day. Goodbye!" in printed
    assert "Status: Completed" in printed
    assert "'disposition': 'question_answered'" in printed and "'satisfied': True" in printed
    assert f"Callback call.completed to {live_server.url}/demo-api/call-callbacks: delivered, HTTP 200" in printed


def test_demo_call_without_a_provider_says_what_to_set(demo, settings):
    settings.LLM_BASE_URL = ""
    with pytest.raises(CommandError, match="This agent needs an AI provider: set LLM_BASE_URL"):
        call_command("demo_call")


def test_the_demo_callback_receiver_checks_the_signature(demo, client):
    from calls import services

    agent = Agent.objects.get(tenant=demo, agent_code="order-assistant")
    trunk = SipTrunk.objects.get(tenant=demo, name="Demo trunk (scripted caller)")
    body = {"phone_number": "+14155552671", "agent_id": str(agent.pk), "sip_trunk_id": str(trunk.pk)}
    call = services.trigger_call(demo, {**body, "metadata": {"customer_name": "Ana"}}).call
    payload = f'{{"call_id": "{call.pk}"}}'.encode()
    good = hex_signature(demo.webhook_secret, payload)
    url = "/demo-api/call-callbacks"

    def post(signature):
        return client.post(url, payload, content_type="application/json", HTTP_X_SWITCHBOARD_SIGNATURE=signature)

    assert post(good).json() == {"verified": True}
    assert post("0" * 64).status_code == 401
    assert client.post(url, b"[]", content_type="application/json").status_code == 400
