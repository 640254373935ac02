from __future__ import annotations

import pytest

from integrations.models import ApiCallLog
from rules.models import Conversation, Message
from tenants.models import Role
from tests.rules.conftest import reply

URL = "/api/v1/rules/dry-run"


@pytest.fixture
def order_rules(tenant, api, make_endpoint, make_rule):
    api.route("GET", "/orders/*", lambda request: (200, {}, {"data": {"status": "shipped"}}))
    endpoint = make_endpoint(
        tenant,
        api,
        mapping={"order_status": "data.status"},
        parameters=[{"name": "orderId", "location": "path", "type": "integer", "required": True}],
        headers={"X-Api-Key": "secret-header-value-123"},
    )
    make_rule(tenant, "Greeting", priority=1, trigger={"type": "regex", "pattern": "^hi$"}, actions=[reply("hello")])
    make_rule(
        tenant,
        "Order status",
        priority=10,
        trigger={"type": "regex", "pattern": r"order #?(?P<orderId>\d+)", "flags": "i"},
        actions=[
            {"type": "SET_VARIABLE", "name": "topic", "value": "orders"},
            {"type": "CALL_API", "endpoint": str(endpoint.id), "params": {"orderId": "{orderId}"}},
            reply("Order {orderId} is {order_status} ({topic}, {plan})."),
        ],
    )
    make_rule(tenant, "Fallback", priority=100, actions=[reply("fallback")])
    return endpoint


def test_dry_run_explains_the_match_renders_the_request_and_sends_nothing(clients, order_rules, api, tenant):
    conversation = Conversation.objects.create(tenant=tenant, variables={"plan": "gold"})
    response = clients[Role.MEMBER].post(
        URL, {"message": "Where is order #42?", "conversation": str(conversation.id)}, format="json"
    )

    assert response.status_code == 200
    report = response.json()
    assert report["dry_run"] is True
    assert report["matched_rule"]["name"] == "Order status"
    assert [(r["name"], r["outcome"]) for r in report["rules"]] == [
        ("Greeting", "no_match"),
        ("Order status", "matched"),
        ("Fallback", "not_reached"),
    ]
    assert report["rules"][1]["match"] == {"span": [9, 18], "text": "order #42", "groups": {"orderId": "42"}}
    set_variable, call, text = report["actions"]
    assert set_variable["value"] == "orders"
    assert call["status"] == "would_run"
    assert call["request"]["method"] == "GET"
    assert call["request"]["url"] == api.url("/orders/42")
    assert call["would_map"] == ["order_status"]
    assert "secret-header-value-123" not in response.content.decode()
    assert text["text"] == "Order 42 is  (orders, gold)."
    assert text["missing_variables"] == ["order_status"]

    # Nothing was sent and nothing was saved.
    assert api.count() == 0
    assert ApiCallLog.objects.count() == 0
    assert Message.objects.count() == 0
    conversation.refresh_from_db()
    assert conversation.variables == {"plan": "gold"}
    assert Conversation.objects.count() == 1


def test_dry_run_reports_a_request_the_real_run_would_refuse(clients, tenant, order_rules, api, make_rule):
    action = {"type": "CALL_API", "endpoint": str(order_rules.id), "params": {"orderId": "{nothing}"}}
    make_rule(tenant, "Broken", priority=5, trigger={"type": "regex", "pattern": "broken"}, actions=[action])

    report = clients[Role.MEMBER].post(URL, {"message": "broken"}, format="json").json()

    assert report["actions"][0]["status"] == "failure"
    assert report["actions"][0]["error"] == "missing required parameter: orderId"
    assert api.count() == 0


def test_dry_run_shows_ai_verdicts_and_skips(clients, tenant, make_rule, llm):
    make_rule(
        tenant,
        "Refund",
        trigger={"type": "ai", "condition": "wants a refund"},
        actions=[{"type": "REPLY_AI", "instructions": "x"}],
    )
    llm.true_conditions = {"wants a refund"}
    report = clients[Role.MEMBER].post(URL, {"message": "money back please"}, format="json").json()
    assert report["rules"][0]["outcome"] == "matched"
    assert report["rules"][0]["match"] == {"ai_verdict": True}
    assert report["ai"]["called"] is True
    assert report["actions"][0]["status"] == "would_run"
    assert llm.calls == 1  # the classification only: the reply is not written in a dry run


def test_dry_run_without_provider_says_ai_rules_are_skipped(clients, tenant, make_rule):
    make_rule(tenant, "Refund", trigger={"type": "ai", "condition": "wants a refund"}, actions=[reply("x")])
    report = clients[Role.MEMBER].post(URL, {"message": "money back please"}, format="json").json()
    assert report["rules"][0]["outcome"] == "skipped"
    assert report["rules"][0]["reason"] == "no AI provider is configured"
    assert report["matched_rule"] is None


def test_dry_run_roles_and_isolation(clients, other_client, tenant):
    assert clients[Role.VIEWER].post(URL, {"message": "hi"}, format="json").status_code == 403
    conversation = Conversation.objects.create(tenant=tenant)
    response = other_client.post(URL, {"message": "hi", "conversation": str(conversation.id)}, format="json")
    assert response.status_code == 404
    assert clients[Role.MEMBER].post(URL, {"text": "hi"}, format="json").status_code == 400
