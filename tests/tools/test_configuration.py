"""Configuring tools: an agent's `tools` (endpoints of its own tenant only, in REST, model and admin),
and the endpoint's voice messages, burden and response template in REST and the admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext

from calls import dialing
from calls.models import Agent
from integrations.models import Connection, Endpoint

AGENT = {"name": "Teller", "agent_code": "teller", "input_schema": {"fields": ["customer_name"]}}


@pytest.fixture
def admin(clients):
    return clients["admin"]


def test_agent_tools_are_endpoint_ids_of_the_tenant(admin, viewer, tenant, make_endpoint):
    balance, hours = make_endpoint(tenant, "get_balance"), make_endpoint(tenant, "branch_hours")

    created = admin.post("/api/v1/agents", {**AGENT, "tools": [str(balance.pk)]}, format="json")
    assert created.status_code == 201, created.json()
    agent_id = created.json()["id"]
    assert created.json()["tools"] == [str(balance.pk)]

    patched = admin.patch(f"/api/v1/agents/{agent_id}", {"tools": [str(balance.pk), str(hours.pk)]}, format="json")
    assert patched.status_code == 200, patched.json()
    assert sorted(patched.json()["tools"]) == sorted([str(balance.pk), str(hours.pk)])
    assert set(Agent.objects.get(pk=agent_id).tools.all()) == {balance, hours}
    assert viewer.get(f"/api/v1/agents/{agent_id}").json()["tools"] == patched.json()["tools"]


def test_listed_and_read_agents_carry_their_tools_in_endpoint_order_from_one_query(
    viewer, tenant, make_endpoint, make_agent, http_server
):
    # given tools on two connections, whose order (connection name, then endpoint name) is not the
    # order they were made or added in, an agent holding them all and one holding none
    zeta, alpha = make_endpoint(tenant, "zeta_tool"), make_endpoint(tenant, "alpha_tool")
    other = Connection.objects.create(tenant=tenant, name="Another API", base_url=http_server.base_url)
    middle = Endpoint.objects.create(tenant=tenant, connection=other, name="Middle", tool_name="middle", path="/m")
    holder = make_agent(tenant, tools=[zeta, alpha, middle])
    make_agent(tenant, name="Empty", agent_code="empty")
    expected = [str(tool.pk) for tool in holder.tools.all()]
    assert expected == [str(middle.pk), str(alpha.pk), str(zeta.pk)]
    # when a viewer lists the agents and reads the one with tools
    with CaptureQueriesContext(connection) as captured:
        listed = viewer.get("/api/v1/agents").json()["results"]
    agent_queries = [q["sql"] for q in captured.captured_queries if "calls_agent" in q["sql"]]
    detail = viewer.get(f"/api/v1/agents/{holder.pk}").json()
    # then the tools are the relation's ids in its order, [] for none, from one query on the agents
    assert {agent["agent_code"]: agent["tools"] for agent in listed} == {"teller": expected, "empty": []}
    assert detail["tools"] == expected
    assert len(agent_queries) == 1


def test_another_tenants_endpoint_is_refused_by_name_like_a_missing_one(
    admin, tenant, other_tenant, make_endpoint, make_agent
):
    mine, theirs = make_endpoint(tenant, "get_balance"), make_endpoint(other_tenant, "secret_tool")
    agent = make_agent(tenant, tools=[mine])

    created = admin.post("/api/v1/agents", {**AGENT, "agent_code": "x", "tools": [str(theirs.pk)]}, format="json")
    patched = admin.patch(f"/api/v1/agents/{agent.pk}", {"tools": [str(mine.pk), str(theirs.pk)]}, format="json")

    for response in (created, patched):
        assert response.status_code == 400
        assert response.json()["details"] == {"tools": [f'Invalid pk "{theirs.pk}" - object does not exist.']}
        assert "secret_tool" not in response.content.decode()
    assert list(agent.tools.all()) == [mine]
    assert not Agent.objects.filter(agent_code="x").exists()


def test_the_model_refuses_another_tenants_endpoint_either_way(tenant, other_tenant, make_endpoint, make_agent):
    theirs = make_endpoint(other_tenant, "their_tool")
    agent = make_agent(tenant)

    with pytest.raises(ValidationError), transaction.atomic():
        agent.tools.add(theirs)
    with pytest.raises(ValidationError), transaction.atomic():
        theirs.agents.add(agent)
    assert not agent.tools.exists()


def test_endpoint_voice_messages_in_rest(admin, tenant, make_endpoint):
    endpoint = make_endpoint(tenant, "get_balance")
    url = f"/api/v1/endpoints/{endpoint.pk}"
    voice = {
        "say_on_start": "One moment, {{customer_name}}.",
        "say_on_delay": "Still looking.",
        "say_on_delay_seconds": 5,
        "say_on_failure": "Sorry, the bank is not answering.",
        "burden": "verified",
        "response_template": "Your current balance is {{response.balance}} pesos.",
    }

    response = admin.patch(url, voice, format="json")

    assert response.status_code == 200, response.json()
    assert {key: response.json()[key] for key in voice} == voice
    broken = admin.patch(url, {"say_on_failure": "Sorry {{#if x}}"}, format="json")
    assert broken.status_code == 400 and "say_on_failure" in broken.json()["details"]
    too_long = admin.patch(url, {"say_on_delay_seconds": 0}, format="json")
    assert too_long.status_code == 400 and "say_on_delay_seconds" in too_long.json()["details"]


@pytest.fixture
def staff(tenant, make_staff_user) -> Client:
    client = Client()
    client.force_login(make_staff_user("ops", tenant, role="admin"))
    return client


def test_admin_endpoint_form_shows_burden_response_template_and_voice(staff, tenant, make_endpoint):
    endpoint = make_endpoint(tenant, "get_balance", say_on_delay="Still looking.")

    page = staff.get(f"/admin/integrations/endpoint/{endpoint.pk}/change/").content.decode()
    inline = staff.get(f"/admin/integrations/connection/{endpoint.connection_id}/change/").content.decode()

    for field in (
        "burden",
        "response_template",
        "say_on_start",
        "say_on_delay",
        "say_on_delay_seconds",
        "say_on_failure",
    ):
        assert f'name="{field}"' in page
        assert f'name="endpoints-0-{field}"' in inline
    assert "Still looking." in page


def test_admin_agent_form_picks_only_the_tenants_endpoints(staff, tenant, other_tenant, make_endpoint):
    mine = make_endpoint(tenant, "get_balance")
    make_endpoint(other_tenant, "their_tool")

    page = staff.get("/admin/calls/agent/add/").content.decode()
    assert "get_balance" in page and "their_tool" not in page
    assert "selectfilter" in page.lower()  # filter_horizontal

    data = {
        "name": "Teller",
        "agent_code": "teller",
        "status": "active",
        "language": "en-US",
        "input_schema": '{"fields": ["customer_name"], "sample_context": {}}',
        "tools": [str(mine.pk)],
    }
    response = staff.post("/admin/calls/agent/add/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(Agent.objects.get(agent_code="teller").tools.all()) == [mine]


def test_admin_agent_form_refuses_another_tenants_endpoint(tenant, other_tenant, make_endpoint, make_agent):
    superuser = Client()
    superuser.force_login(get_user_model().objects.create_superuser("root", password="pw-for-tests-1"))
    agent = make_agent(tenant)
    theirs = make_endpoint(other_tenant, "their_tool")
    data = {
        "name": agent.name,
        "agent_code": agent.agent_code,
        "status": "active",
        "language": "en-US",
        "input_schema": '{"fields": [], "sample_context": {}}',
        "tools": [str(theirs.pk)],
    }

    response = superuser.post(f"/admin/calls/agent/{agent.pk}/change/", data)

    assert response.status_code == 200
    # The choices are the agent's tenant's endpoints only, so another tenant's id is not a choice at all.
    assert "Select a valid choice" in response.content.decode()
    assert not agent.tools.exists()


def test_call_admin_links_the_conversation(staff, member, tenant, make_agent, trunk):
    body = {
        "phone_number": "+14155552671",
        "agent_id": str(make_agent(tenant).pk),
        "sip_trunk_id": str(trunk.pk),
        "metadata": {"customer_name": "Ada"},
    }
    call_id = member.post("/integration/v1/calls", body, format="json").json()["call_id"]
    dialing.advance_call(call_id)  # the first dialer step gives the call its conversation

    page = staff.get(f"/admin/calls/call/{call_id}/change/").content.decode()

    assert "Conversation" in page and "voice conversation" in page.lower()
