from __future__ import annotations

import pytest

from rules.models import Rule, RuleAction
from tenants.models import Role

URL = "/api/v1/rules"


@pytest.fixture
def endpoint(tenant, api, make_endpoint):
    return make_endpoint(tenant, api, mapping={"order_status": "data.status"})


def rule_body(endpoint, **overrides):
    body = {
        "name": "Order status",
        "priority": 10,
        "is_active": True,
        "continue_matching": False,
        "trigger": {"type": "regex", "pattern": r"order #?(?P<orderId>\d+)", "flags": "i"},
        "actions": [
            {
                "type": "CALL_API",
                "endpoint": str(endpoint.id),
                "params": {"orderId": "{orderId}"},
                "on_error": "branch",
                "branch": [{"type": "REPLY_TEXT", "template": "No such order."}],
            },
            {"type": "SET_VARIABLE", "name": "asked", "value": "yes"},
            {"type": "REPLY_TEXT", "template": "Order {orderId}: {order_status}"},
            {"type": "REPLY_AI", "instructions": "Summarise."},
        ],
        "fallback_text": "Sorry.",
    }
    return {**body, **overrides}


def test_create_read_update_delete_in_the_spec_shape(clients, endpoint):
    admin = clients[Role.ADMIN]
    created = admin.post(URL, rule_body(endpoint), format="json")
    assert created.status_code == 201, created.json()
    data = created.json()
    assert data["trigger"] == {"type": "regex", "pattern": r"order #?(?P<orderId>\d+)", "flags": "i"}
    assert data["actions"] == rule_body(endpoint)["actions"]
    assert RuleAction.objects.filter(rule_id=data["id"]).count() == 5

    listed = clients[Role.VIEWER].get(URL).json()
    assert [r["id"] for r in listed["results"]] == [data["id"]]

    changed = admin.patch(
        f"{URL}/{data['id']}",
        {"trigger": {"type": "ai", "condition": "asks about orders"}, "actions": []},
        format="json",
    )
    assert changed.status_code == 200
    assert changed.json()["trigger"] == {"type": "ai", "condition": "asks about orders"}
    assert changed.json()["actions"] == []

    assert admin.delete(f"{URL}/{data['id']}").status_code == 204
    assert not Rule.objects.exists()


def test_slash_literal_is_stored_as_pattern_and_flags(clients, endpoint):
    body = rule_body(endpoint, trigger={"type": "regex", "pattern": r"/\b(price|cost|how much)\b/i"}, actions=[])
    data = clients[Role.ADMIN].post(URL, body, format="json").json()
    assert data["trigger"] == {"type": "regex", "pattern": r"\b(price|cost|how much)\b", "flags": "i"}


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("(?=x)y", "look-ahead"),
        (r"(a)\1", "backreferences"),
        ("(?>a)", "atomic groups"),
        ("a++", "possessive quantifiers"),
        ("a{1001}", "repeat counts above 1000"),
        ("(?<=a)b", "look-behind"),
    ],
)
def test_unsupported_patterns_are_a_400_naming_the_problem(clients, endpoint, pattern, message):
    response = clients[Role.ADMIN].post(
        URL, rule_body(endpoint, trigger={"type": "regex", "pattern": pattern}), format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith("trigger: pattern refused: ")
    assert message in body["error"]
    assert message in body["details"]["trigger"][0]
    assert not Rule.objects.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"trigger": {"type": "sometimes"}}, "type must be one of"),
        ({"trigger": {"type": "ai"}}, "needs a condition"),
        ({"trigger": {"type": "always", "pattern": "x"}}, "unknown key"),
        ({"actions": [{"type": "PAINT"}]}, "action 1: type must be one of"),
        ({"actions": [{"type": "REPLY_TEXT"}]}, "template is required"),
        ({"actions": [{"type": "REPLY_TEXT", "template": "{{#if x}}"}]}, "action 1 (REPLY_TEXT): template:"),
        ({"actions": [{"type": "SET_VARIABLE", "name": "not a name", "value": ""}]}, "name must be a variable name"),
        ({"actions": [{"type": "CALL_API", "endpoint": "00000000-0000-0000-0000-000000000000"}]}, "unknown endpoint"),
        ({"actions": [{"type": "CALL_API", "endpoint": "x", "on_error": "branch"}]}, "unknown endpoint"),
        ({"colour": "red"}, "colour: Unknown field."),
    ],
)
def test_invalid_rules_are_refused(clients, endpoint, change, message):
    response = clients[Role.ADMIN].post(URL, rule_body(endpoint, **change), format="json")
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_branch_needs_the_branch_policy(clients, endpoint):
    action = {"type": "CALL_API", "endpoint": str(endpoint.id), "on_error": "branch"}
    response = clients[Role.ADMIN].post(URL, rule_body(endpoint, actions=[action]), format="json")
    assert "needs a non-empty branch list" in response.json()["error"]
    action = {**action, "on_error": "fail", "branch": [{"type": "REPLY_TEXT", "template": "x"}]}
    response = clients[Role.ADMIN].post(URL, rule_body(endpoint, actions=[action]), format="json")
    assert 'branch actions need "on_error": "branch"' in response.json()["error"]


def test_a_rule_cannot_reference_another_tenants_endpoint(clients, other_tenant, api, make_endpoint):
    foreign = make_endpoint(other_tenant, api)
    response = clients[Role.ADMIN].post(URL, rule_body(foreign), format="json")
    assert response.status_code == 400
    assert f"unknown endpoint {foreign.id}" in response.json()["error"]


def test_roles_viewer_and_member_cannot_write_admin_can(clients, endpoint):
    for role in (Role.VIEWER, Role.MEMBER):
        response = clients[role].post(URL, rule_body(endpoint), format="json")
        assert response.status_code == 403
        assert response.json() == {"error": "This action requires the admin role"}
    assert clients[Role.ADMIN].post(URL, rule_body(endpoint), format="json").status_code == 201


def test_other_tenants_rules_are_404(clients, other_client, endpoint):
    rule_id = clients[Role.ADMIN].post(URL, rule_body(endpoint), format="json").json()["id"]
    assert other_client.get(f"{URL}/{rule_id}").status_code == 404
    assert other_client.patch(f"{URL}/{rule_id}", {"name": "x"}, format="json").status_code == 404
    assert other_client.delete(f"{URL}/{rule_id}").status_code == 404
    assert other_client.get(URL).json()["results"] == []
    assert Rule.objects.get(pk=rule_id).name == "Order status"


def test_unauthenticated_is_401(client, db):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid or inactive API key"}


def test_trigger_and_actions_are_documented_as_typed_objects(client, db):
    schemas = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["components"]["schemas"]
    trigger = schemas["RuleRequest"]["properties"]["trigger"]
    actions = schemas["RuleRequest"]["properties"]["actions"]
    assert trigger["properties"]["type"]["enum"] == ["regex", "ai", "always"]
    assert trigger["required"] == ["type"]
    assert actions["type"] == "array"
    assert actions["items"]["properties"]["type"]["enum"] == ["CALL_API", "SET_VARIABLE", "REPLY_TEXT", "REPLY_AI"]
