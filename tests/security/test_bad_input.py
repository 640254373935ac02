"""Standing tests: hostile input is a clear 4xx `{"error": ...}` that changes nothing — never a 500, a
hang or a worker-sized computation. Covers numbers that overflow, template limits reached through
every conversation path, mapping expressions that grow exponentially, and templated base URLs."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from calls.models import Agent, Call, SipTrunk
from integrations import mapping
from integrations.executor import execute
from integrations.models import Connection
from rules.definitions import parse_actions, replace_actions
from rules.models import Conversation, Message, Rule, WidgetKey
from tests.security.factory import build

ORIGIN = "https://shop.example"
OVERFLOW = '{"x": 1e999}'
EXPLODING = "{{#each a}}{{#each ../a}}{{#each ../../a}}0123456789{{/each}}{{/each}}{{/each}}"


def _raw(client, path: str, body: str, **headers):
    return client.post(path, body, content_type="application/json", **headers)


@pytest.fixture
def widget_key(tenant):
    return WidgetKey.objects.create(tenant=tenant, name="Shop", allowed_origins=[ORIGIN])


@pytest.fixture
def exploding_rule(tenant):
    rule = Rule.objects.create(tenant=tenant, name="Boom", trigger_type="always")
    replace_actions(rule, parse_actions([{"type": "REPLY_TEXT", "template": EXPLODING}], tenant))
    return rule


def test_an_overflowing_number_in_widget_variables_is_a_400(widget_key):
    body = f'{{"widget_key": "{widget_key.key}", "variables": {OVERFLOW}}}'

    response = _raw(Client(HTTP_ORIGIN=ORIGIN), "/widget/v1/sessions", body)

    assert response.status_code == 400
    assert "finite" in response.json()["error"]
    assert not Conversation.objects.exists()


def test_an_overflowing_number_in_call_metadata_is_a_400(member, tenant):
    agent, trunk = build(Agent, tenant), build(SipTrunk, tenant, trunk_phone="+14155552671")
    body = f'{{"phone_number": "+14155550100", "agent_id": "{agent.pk}", "sip_trunk_id": "{trunk.pk}", "metadata": {OVERFLOW}}}'

    response = member.post("/integration/v1/calls", body, content_type="application/json")

    assert response.status_code == 400
    assert "finite" in response.json()["error"]
    assert not Call.objects.exists()


def test_an_overflowing_number_in_dry_run_variables_is_a_400(member):
    response = member.post(
        "/api/v1/rules/dry-run", f'{{"message": "hi", "variables": {OVERFLOW}}}', content_type="application/json"
    )

    assert response.status_code == 400
    assert "finite" in response.json()["error"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_refused(member, constant):
    body = f'{{"message": "hi", "variables": {{"x": {constant}}}}}'

    response = member.post("/api/v1/rules/dry-run", body, content_type="application/json")

    assert response.status_code == 400


def test_a_template_limit_in_a_widget_reply_is_a_4xx_and_the_conversation_is_unchanged(widget_key, exploding_rule):
    client = Client(HTTP_ORIGIN=ORIGIN)
    opened = _raw(
        client, "/widget/v1/sessions", json.dumps({"widget_key": widget_key.key, "variables": {"a": list(range(60))}})
    )
    session = opened.json()

    response = _raw(
        client,
        f"/widget/v1/sessions/{session['session_id']}/messages",
        '{"text": "hello"}',
        HTTP_AUTHORIZATION=f"Bearer {session['token']}",
    )

    assert response.status_code == 400
    assert response.json()["error"].startswith("A rule's template could not be rendered")
    assert not Message.objects.exists()


def test_a_template_limit_in_a_conversation_message_is_a_400(member, tenant, exploding_rule):
    conversation = Conversation.objects.create(tenant=tenant, variables={"a": list(range(60))})

    response = member.post(f"/api/v1/conversations/{conversation.pk}/messages", {"text": "hi"}, format="json")

    assert response.status_code == 400
    assert "could not be rendered" in response.json()["error"]
    assert not conversation.messages.exists()


def test_a_template_limit_in_a_dry_run_is_a_400(member, exploding_rule):
    response = member.post(
        "/api/v1/rules/dry-run", {"message": "hi", "variables": {"a": list(range(60))}}, format="json"
    )

    assert response.status_code == 400
    assert "could not be rendered" in response.json()["error"]


def test_an_exponential_mapping_expression_is_cut_short(endpoint_to, http_server):
    http_server.set_json({"access_token": "t" * 64})
    expression = "access_token" + " | [@,@]" * 24
    endpoint = endpoint_to(path="/json", response_mapping={"token": "access_token", "boom": expression})

    started = time.monotonic()
    result = execute(endpoint)
    elapsed = time.monotonic() - started

    assert result.mapped == {"token": "t" * 64, "boom": None}
    assert expression in result.warnings[-1] or any(expression in w for w in result.warnings)
    assert elapsed < 5  # generous: unbounded, this expression builds ~1 GB of JSON


@pytest.mark.parametrize(
    "expression",
    [
        "join('', [@,@,@,@,@,@,@,@,@,@] | [] | [@,@,@,@,@,@,@,@,@,@] | [] | [@,@,@,@,@,@,@,@,@,@] | [])",
        "to_string(@ | [@,@] | [@,@] | [@,@] | [@,@] | [@,@] | [@,@] | [@,@] | [@,@] | [@,@] | [@,@] | [@,@])",
        "[@,@,@,@,@,@,@,@,@,@] | [] | [@,@,@,@,@,@,@,@,@,@] | [] | [@,@,@,@,@,@,@,@,@,@] | [] | [@,@,@,@] | []",
    ],
)
def test_every_growth_path_of_a_mapping_is_bounded(expression):
    started = time.monotonic()
    mapped, unresolved = mapping.apply_mapping({"v": expression}, "x" * 100_000, 200, {})

    assert mapped == {"v": None} and unresolved == [expression]
    assert time.monotonic() - started < 5


def test_an_oversized_mapping_expression_is_refused_at_save(clients, tenant):
    connection = build(Connection, tenant)
    body = {
        "connection": str(connection.pk),
        "name": "Big",
        "tool_name": "big",
        "response_mapping": {"v": "a" + ".b" * 600},
    }

    response = clients["admin"].post("/api/v1/endpoints", body, format="json")

    assert response.status_code == 400
    assert "longer than" in json.dumps(response.json())


def test_a_variable_in_a_templated_base_url_cannot_change_the_host(endpoint_to, http_server):
    endpoint = endpoint_to(connection={"base_url": http_server.base_url + "/tenants/{{account}}"}, path="/echo")

    execute(endpoint, variables={"account": "x@evil.example/../../y?z=1"})

    assert http_server.last.path.startswith("/tenants/x%40evil.example%2F..%2F..%2Fy%3Fz%3D1/echo")
