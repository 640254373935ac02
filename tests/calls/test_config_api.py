"""/api/v1/agents and /api/v1/sip-trunks: CRUD, validation, roles, tenant isolation, audit."""

from __future__ import annotations

import pytest

from calls.models import Agent, SipTrunk
from tenants.models import AuditEvent

AGENT = {
    "name": "Reminder",
    "agent_code": "reminder",
    "prompt": "Remind politely.",
    "voice": "alloy",
    "language": "es-MX",
    "input_schema": {"fields": ["amount_due"], "sample_context": {"amount_due": "5"}},
}
TRUNK = {"name": "Carrier A", "trunk_phone": "+1 415 555 2671", "max_cps": 3, "max_channels": 20}


def test_admin_creates_agent_and_it_is_audited(clients, tenant):
    response = clients["admin"].post("/api/v1/agents", AGENT, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "active" and body["input_schema"] == AGENT["input_schema"]
    agent = Agent.objects.get(pk=body["id"])
    assert agent.tenant == tenant
    assert AuditEvent.objects.filter(tenant=tenant, action="created", object_id=str(agent.pk)).exists()


def test_roles_for_agents(clients, agent):
    assert clients["viewer"].get("/api/v1/agents").status_code == 200
    for role in ("viewer", "member"):
        response = clients[role].post("/api/v1/agents", AGENT, format="json")
        assert response.status_code == 403
        assert response.json() == {"error": "This action requires the admin role"}
    response = clients["member"].patch(f"/api/v1/agents/{agent.pk}", {"status": "inactive"}, format="json")
    assert response.status_code == 403


def test_agent_code_unique_per_tenant(clients, agent, other_client):
    response = clients["admin"].post("/api/v1/agents", {**AGENT, "agent_code": agent.agent_code}, format="json")
    assert response.status_code == 400
    assert response.json()["details"] == {"agent_code": ["An agent with this agent_code already exists."]}
    assert (
        other_client.post("/api/v1/agents", {**AGENT, "agent_code": agent.agent_code}, format="json").status_code == 201
    )


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"fields": "amount"}, "input_schema.fields must be a list of non-empty names"),
        ({"fields": ["a", "a"]}, "input_schema.fields must not repeat a name"),
        ({"fields": [], "sample_context": []}, "input_schema.sample_context must be an object"),
        ({"fields": [], "extra": 1}, "unknown key(s) in input_schema: extra"),
    ],
)
def test_agent_input_schema_is_validated(clients, schema, message):
    response = clients["admin"].post("/api/v1/agents", {**AGENT, "input_schema": schema}, format="json")
    assert response.status_code == 400
    assert response.json()["details"] == {"input_schema": [message]}


def test_agents_of_other_tenants_are_404(other_client, agent):
    assert other_client.get(f"/api/v1/agents/{agent.pk}").status_code == 404
    assert other_client.patch(f"/api/v1/agents/{agent.pk}", {"name": "x"}, format="json").status_code == 404
    assert other_client.delete(f"/api/v1/agents/{agent.pk}").status_code == 404
    assert other_client.get("/api/v1/agents").json()["count"] == 0


def test_trunk_crud_normalises_phone_and_validates_dialer_config(clients):
    admin = clients["admin"]
    response = admin.post("/api/v1/sip-trunks", TRUNK, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["trunk_phone"] == "+14155552671"
    assert body["dialer"] == "simulated" and body["dialer_config"] == {} and body["live_channels"] == 0
    config = {"ring_seconds": 1, "talk_seconds": 2, "outcome": {"completed": 3, "declined": 1}}
    response = admin.patch(f"/api/v1/sip-trunks/{body['id']}", {"dialer_config": config}, format="json")
    assert response.status_code == 200
    assert SipTrunk.objects.get().dialer_config == {
        "ring_seconds": 1.0,
        "talk_seconds": 2.0,
        "outcome": {"completed": 3.0, "declined": 1.0},
    }


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"trunk_phone": "4155552671"}, "trunk_phone", "trunk_phone must be in E.164 format, e.g. +14155552671"),
        ({"max_cps": 0}, "max_cps", "Ensure this value is greater than or equal to 1."),
        ({"max_channels": 0}, "max_channels", "Ensure this value is greater than or equal to 1."),
        ({"dialer": "twilio"}, "dialer", '"twilio" is not a valid choice.'),
        ({"dialer_config": {"ring_seconds": -1}}, "dialer_config", "ring_seconds must be between 0 and 300"),
        ({"dialer_config": {"outcome": "busy"}}, "dialer_config", None),
        (
            {"dialer_config": {"outcome": {"completed": 0}}},
            "dialer_config",
            "at least one outcome weight must be positive",
        ),
        ({"dialer_config": {"speed": 1}}, "dialer_config", "unknown setting(s) for the simulated dialer: speed"),
        ({"dialer_config": [1]}, "dialer_config", "dialer_config must be a JSON object"),
    ],
)
def test_trunk_validation(clients, changes, field, message):
    response = clients["admin"].post("/api/v1/sip-trunks", {**TRUNK, **changes}, format="json")
    assert response.status_code == 400
    details = response.json()["details"]
    assert list(details) == [field]
    if message:
        assert details[field] == [message]


def test_trunk_with_calls_cannot_be_deleted(clients, trunk, agent):
    from calls.models import Call

    Call.objects.create(tenant=trunk.tenant, agent=agent, sip_trunk=trunk, phone_number="+14155552671")
    response = clients["admin"].delete(f"/api/v1/sip-trunks/{trunk.pk}")
    assert response.status_code == 409
    assert "set its status to inactive" in response.json()["error"]
    response = clients["admin"].delete(f"/api/v1/agents/{agent.pk}")
    assert response.status_code == 409


def test_unknown_fields_are_rejected(clients):
    response = clients["admin"].post("/api/v1/sip-trunks", {**TRUNK, "tools": []}, format="json")
    assert response.status_code == 400
    assert response.json()["details"] == {"tools": ["Unknown field."]}


def test_deleting_a_tenant_deletes_its_calls(tenant, agent, trunk):
    from calls import events, services
    from tests.calls.conftest import call_body

    call = services.trigger_call(tenant, call_body(agent, trunk, callback_url="http://127.0.0.1:9/h")).call
    events.record_call_event(call, "Completed", "carrier")
    tenant.delete()
    assert not Agent.objects.exists() and not SipTrunk.objects.exists()
