"""One template context, from the live state: an endpoint's templates and the action's params agree."""

from __future__ import annotations

from rules.engine import evaluate_message
from rules.models import Conversation


def test_a_variable_set_by_the_rule_reaches_the_endpoints_templates(tenant, api, make_endpoint, make_rule):
    api.route("GET", "/orders", lambda request: (200, {}, {"ok": True}))
    endpoint = make_endpoint(
        tenant,
        api,
        path="/orders",
        query={"from_conversation": "{{conversation.variables.plan}}", "from_params": "{{params.plan}}"},
        parameters=[{"name": "plan", "type": "string", "location": "body"}],
    )
    make_rule(
        tenant,
        "Upgrade",
        actions=[
            {"type": "SET_VARIABLE", "name": "plan", "value": "gold"},
            {
                "type": "CALL_API",
                "endpoint": str(endpoint.id),
                "params": {"plan": "{{conversation.variables.plan}}"},
            },
        ],
    )
    conversation = Conversation.objects.create(tenant=tenant, channel="api", variables={"plan": "basic"})

    evaluate_message(conversation, "upgrade me")

    (request,) = [r for r in api.requests if r.path == "/orders"]
    # The endpoint's own template saw the snapshot taken before the message ("basic") before.
    assert request.query == {"from_conversation": "gold", "from_params": "gold"}


def test_a_dry_run_renders_the_endpoint_with_the_variables_set_before_it(tenant, api, make_endpoint, make_rule):
    endpoint = make_endpoint(tenant, api, path="/orders", query={"plan": "{{conversation.variables.plan}}"})
    make_rule(
        tenant,
        "Upgrade",
        actions=[
            {"type": "SET_VARIABLE", "name": "plan", "value": "gold"},
            {"type": "CALL_API", "endpoint": str(endpoint.id), "params": {}},
        ],
    )
    conversation = Conversation.objects.create(tenant=tenant, channel="api", variables={"plan": "basic"})

    result = evaluate_message(conversation, "upgrade me", dry_run=True)

    (call,) = [a for a in result.actions if a["type"] == "CALL_API"]
    assert call["request"]["url"].endswith("/orders?plan=gold")
    assert api.requests == []
