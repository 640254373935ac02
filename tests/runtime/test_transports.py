"""The runtime behind the REST conversation API and the chat widget's REPLY_AI with an agent."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.test import Client

from calls.models import AgentSession
from rules.definitions import parse_actions, replace_actions
from rules.models import Conversation, Rule, WidgetKey
from tests.runtime.conftest import METADATA

pytestmark = pytest.mark.django_db
ORIGIN = "https://shop.example"


def open_agent_conversation(client, agent):
    response = client.post("/api/v1/conversations", {"agent": str(agent.pk), "variables": METADATA}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_rest_conversation_with_an_agent_from_first_turn_to_analysis(member, voice_agent, llm, customer_api):
    opened = open_agent_conversation(member, voice_agent)
    assert opened["reply"] == "Hello Rahul, this is Asha from Acme Finance about your payment of 150000 rupees."
    assert opened["ended"] is False and opened["say"] == [opened["reply"]]

    llm.call_tool("get_balance", {"account": "AC-42"}).say("Shall we set up a payment?")
    response = member.post(f"/api/v1/conversations/{opened['id']}/messages", {"text": "My balance?"}, format="json")
    body = response.json()
    assert response.status_code == 200
    assert (
        body["reply"] == "Let me check that for you. Your current balance is 150000 rupees. Shall we set up a payment?"
    )
    assert body["tool_calls"][0]["tool"] == "get_balance"
    assert body["tool_calls"][0]["request"]["url"].endswith("/balance?account=AC-42")
    assert customer_api.count("/balance") == 1

    llm.json({"disposition": "callback_requested", "summary": "Asked for the balance.", "sentiment": "neutral",
              "extracted": {"preferred_date": None, "amount": "n/a", "channel": None}})  # fmt: skip
    ended = member.post(f"/api/v1/conversations/{opened['id']}/end", format="json")
    assert ended.status_code == 200
    assert ended.json() == {
        "disposition": "callback_requested",
        "summary": "Asked for the balance.",
        "sentiment": "neutral",
        "extracted": {"preferred_date": None, "amount": None, "channel": None},
    }
    after = member.post(f"/api/v1/conversations/{opened['id']}/messages", {"text": "Hello?"}, format="json")
    assert (after.status_code, after.json()) == (409, {"error": "this conversation has ended"})


def test_without_a_provider_rest_answers_409_and_creates_nothing(member, voice_agent, settings):
    settings.LLM_BASE_URL = ""
    response = member.post("/api/v1/conversations", {"agent": str(voice_agent.pk), "variables": {}}, format="json")
    assert (response.status_code, response.json()) == (409, {"error": "this agent needs an AI provider"})
    assert Conversation.objects.count() == 0


def test_another_tenants_agent_is_404_and_a_viewer_cannot_converse(other_client, viewer, voice_agent, llm):
    response = other_client.post("/api/v1/conversations", {"agent": str(voice_agent.pk)}, format="json")
    assert (response.status_code, response.json()) == (404, {"error": "Agent not found"})
    assert viewer.post("/api/v1/conversations", {"agent": str(voice_agent.pk)}, format="json").status_code == 403
    assert Conversation.objects.count() == 0


def test_end_of_a_conversation_without_an_agent_is_a_clear_400(member, llm):
    conversation = member.post("/api/v1/conversations", {"variables": {}}, format="json").json()
    response = member.post(f"/api/v1/conversations/{conversation['id']}/end", format="json")
    assert (response.status_code, response.json()) == (400, {"error": "this conversation is not held by an agent"})


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("analysis", {"extract": [{"name": "d", "type": "datetime"}]}, "unknown type 'datetime'"),
        ("analysis", {"extract": [{"name": "d", "type": "string"}, {"name": "d"}]}, "duplicate field name(s): d"),
        ("analysis", {"extract": [{"name": "plan", "type": "enum"}]}, "an enum needs a non-empty list of values"),
        ("analysis", {"dispositions": ["a", "a"]}, "analysis.dispositions repeats a"),
        ("verification", ["date_of_birth"], "verification keys must be among input_schema.fields"),
        ("max_turns", 0, "max_turns must be a whole number between 1 and 500"),
        ("first_message", "Hello {{#if x}}", "first_message"),
    ],
)
def test_agent_settings_are_validated_with_clear_400s(owner_client, field, value, message):
    body = {"name": "A", "agent_code": "a", field: value}
    response = owner_client.post("/api/v1/agents", body, format="json")
    assert response.status_code == 400
    assert message in json.dumps(response.json()["details"][field])


def test_agent_settings_round_trip(owner_client):
    body = {
        "name": "A",
        "agent_code": "a",
        "input_schema": {"fields": ["date_of_birth"]},
        "verification": ["date_of_birth"],
        "first_message": "Hi {{customer_name}}",
        "analysis": {"dispositions": ["yes"], "extract": [{"name": "plan", "type": "enum", "values": ["a", "b"]}]},
        "max_turns": 10,
        "max_duration_seconds": 120,
        "end_call_message": "Bye",
    }
    created = owner_client.post("/api/v1/agents", body, format="json").json()
    assert {k: created[k] for k in body if k != "input_schema"} == {
        **{k: v for k, v in body.items() if k != "input_schema"},
        "analysis": {"dispositions": ["yes"], "extract": [{"name": "plan", "type": "enum", "description": "", "values": ["a", "b"]}]},
    }  # fmt: skip


def test_the_widget_is_answered_by_an_agent(tenant, voice_agent, llm, customer_api):
    cache.clear()
    rule = Rule.objects.create(tenant=tenant, name="Agent", trigger_type="always")
    replace_actions(rule, parse_actions([{"type": "REPLY_AI", "agent": str(voice_agent.pk)}], tenant))
    key = WidgetKey.objects.create(tenant=tenant, name="Shop", allowed_origins=[ORIGIN])
    browser = Client(HTTP_ORIGIN=ORIGIN)
    opened = browser.post(
        "/widget/v1/sessions", json.dumps({"widget_key": key.key, "variables": {"account": "AC-42"}}),
        content_type="application/json",
    ).json()  # fmt: skip
    llm.call_tool("get_balance", {"account": "AC-42"}).say("Anything else?")

    response = browser.post(
        f"/widget/v1/sessions/{opened['session_id']}/messages", json.dumps({"text": "What is my balance?"}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {opened['token']}",
    )  # fmt: skip

    assert response.status_code == 200
    assert (
        response.json()["reply"] == "Let me check that for you. Your current balance is 150000 rupees. Anything else?"
    )
    assert customer_api.last.query == {"account": "AC-42"}
    conversation = Conversation.objects.get(pk=opened["session_id"])
    assert AgentSession.objects.get(conversation=conversation).agent == voice_agent
    texts = list(conversation.messages.values_list("role", "text"))
    assert texts[0] == ("visitor", "What is my balance?") and len(texts) == 5  # no duplicate of the reply


def test_reply_ai_names_only_an_agent_of_the_tenant(tenant, other_tenant):
    from calls.models import Agent

    foreign = Agent.objects.create(tenant=other_tenant, name="X", agent_code="x")
    with pytest.raises(Exception, match="agent: Agent not found"):
        parse_actions([{"type": "REPLY_AI", "agent": str(foreign.pk)}], tenant)
