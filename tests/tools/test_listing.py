"""GET /api/v1/agents/{id}/tools: OpenAI function tools generated from the declared parameters,
each with its burden level, the guidance for it and its voice messages."""

from __future__ import annotations

import pytest

from calls.tools import GUIDANCE

PARAMETERS = [
    {"name": "account_id", "location": "path", "type": "string", "description": "The account", "required": True},
    {"name": "amount", "location": "body", "type": "number", "description": "How much", "example": 12.5},
    {"name": "months", "location": "query", "type": "integer", "default": 12, "enum": [6, 12, 24]},
    {"name": "urgent", "location": "query", "type": "boolean", "default": False},
    {"name": "address", "location": "body", "type": "object", "description": "Where to send it"},
    {"name": "tags", "location": "body", "type": "array"},
    {"name": "currency", "location": "query", "type": "string", "enum": ["PEN", "USD"], "required": True},
]


def test_tools_are_openai_functions_with_a_schema_from_the_parameters(viewer, tenant, make_endpoint, make_agent):
    endpoint = make_endpoint(
        tenant,
        "pay_bill",
        description="Pays a bill from the account.",
        method="POST",
        path="/accounts/{account_id}/payments",
        body_type="json",
        parameters=PARAMETERS,
        burden="confirmed",
    )
    agent = make_agent(tenant, tools=[endpoint])

    response = viewer.get(f"/api/v1/agents/{agent.pk}/tools")

    assert response.status_code == 200
    assert response.json() == {
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "pay_bill",
                    "description": "Pays a bill from the account.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "account_id": {"type": "string", "description": "The account"},
                            "amount": {"type": "number", "description": "How much", "examples": [12.5]},
                            "months": {"type": "integer", "enum": [6, 12, 24], "default": 12},
                            "urgent": {"type": "boolean", "default": False},
                            "address": {"type": "object", "description": "Where to send it"},
                            "tags": {"type": "array"},
                            "currency": {"type": "string", "enum": ["PEN", "USD"]},
                            # A confirmed tool lets the model pass the caller's confirmation as an argument.
                            "confirmed": {
                                "type": "boolean",
                                "description": "Set to true only after the caller has explicitly confirmed this action.",
                            },
                        },
                        "required": ["account_id", "currency"],
                        "additionalProperties": False,
                    },
                },
                "burden": "confirmed",
                "guidance": GUIDANCE["confirmed"],
                "voice": {"on_start": None, "on_delay": None, "on_failure": None},
            }
        ]
    }


@pytest.mark.parametrize(
    ("burden", "words"),
    [
        ("ambient", "never mention it"),
        ("conversational", "Let me check that for you"),
        ("requested", "only when the caller explicitly asks"),
        ("confirmed", "call it with confirmed=true"),
        ("verified", "identity has been verified in this conversation"),
    ],
)
def test_each_burden_level_has_one_guidance_sentence(viewer, tenant, make_endpoint, make_agent, burden, words):
    agent = make_agent(tenant, tools=[make_endpoint(tenant, "lookup", burden=burden)])

    tool = viewer.get(f"/api/v1/agents/{agent.pk}/tools").json()["tools"][0]

    assert tool["burden"] == burden
    assert words in tool["guidance"]
    assert tool["guidance"].count(". ") == 0 and tool["guidance"].endswith((".", '."'))
    assert "confirmed" not in tool["function"]["parameters"]["properties"] or burden == "confirmed"


def test_voice_messages_and_only_the_agents_own_tools_in_name_order(viewer, tenant, make_endpoint, make_agent):
    balance = make_endpoint(
        tenant,
        "get_balance",
        say_on_start="Let me look at your account.",
        say_on_delay="Still checking, one moment.",
        say_on_delay_seconds=4,
        say_on_failure="Sorry, I could not reach the bank.",
    )
    hours = make_endpoint(tenant, "branch_hours", say_on_delay="Bear with me.")
    make_endpoint(tenant, "not_given_to_the_agent")
    agent = make_agent(tenant, tools=[balance, hours])

    tools = viewer.get(f"/api/v1/agents/{agent.pk}/tools").json()["tools"]

    assert [t["function"]["name"] for t in tools] == ["branch_hours", "get_balance"]
    assert tools[0]["voice"] == {
        "on_start": None,
        "on_delay": {"after_seconds": 3, "say": "Bear with me."},
        "on_failure": None,
    }
    assert tools[1]["voice"] == {
        "on_start": "Let me look at your account.",
        "on_delay": {"after_seconds": 4, "say": "Still checking, one moment."},
        "on_failure": "Sorry, I could not reach the bank.",
    }
    assert tools[0]["function"]["parameters"] == {
        "type": "object",
        "properties": {},
        "required": [],
        "additionalProperties": False,
    }


def test_another_tenants_agent_is_not_found(other_client, tenant, make_endpoint, make_agent, viewer):
    agent = make_agent(tenant, tools=[make_endpoint(tenant, "get_balance")])

    response = other_client.get(f"/api/v1/agents/{agent.pk}/tools")

    assert response.status_code == 404
    assert "get_balance" not in response.content.decode()
    assert viewer.get("/api/v1/agents/not-a-uuid/tools").status_code == 404


def test_listing_needs_a_key(client, tenant, make_agent):
    agent = make_agent(tenant)
    response = client.get(f"/api/v1/agents/{agent.pk}/tools")
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid or inactive API key"}
