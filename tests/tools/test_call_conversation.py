"""A triggered call gets a voice conversation at its first dialer step, whose variables are the call's
metadata; tools invoked in it see that metadata in their templates, and may be only the tools of the
call's agent."""

from __future__ import annotations

from calls import dialing, services
from calls.models import Call
from rules.models import Conversation

METADATA = {"customer_name": "Ada Lovelace", "amount_due": 120}


def place_call(member, agent, trunk, metadata=None):
    body = {
        "phone_number": "+14155552671",
        "agent_id": str(agent.pk),
        "sip_trunk_id": str(trunk.pk),
        "metadata": metadata or METADATA,
    }
    response = member.post("/integration/v1/calls", body, format="json")
    assert response.status_code == 201, response.json()
    dialing.advance_call(response.json()["call_id"])  # the first dialer step: what the worker runs next
    return Call.objects.get(pk=response.json()["call_id"])


def test_a_triggered_call_gets_a_voice_conversation_with_its_metadata(member, tenant, make_agent, trunk):
    call = place_call(member, make_agent(tenant), trunk)
    # once, however often the first step is delivered
    dialing.advance_call(call.pk)
    assert Conversation.objects.count() == 1

    conversation = call.conversation
    assert conversation is not None and conversation.tenant == tenant
    assert conversation.channel == "voice"
    assert conversation.variables == METADATA
    assert conversation.visitor_id == "+14155552671"
    assert conversation.identity_verified is False
    # The public status shape is unchanged (SPEC §9's exact field list).
    status = member.get(f"/integration/v1/calls/{call.pk}/status").json()
    assert set(status) == {
        "id", "phone_number", "call_status", "is_terminal", "stalled", "call_outcome", "duration",
        "start_timestamp", "end_timestamp", "transcript_url", "recording_url", "last_updated",
    }  # fmt: skip


def test_a_call_rejected_at_capacity_opens_no_conversation(member, tenant, make_agent, trunk):
    trunk.max_channels = 1
    trunk.save()
    agent = make_agent(tenant)
    place_call(member, agent, trunk)

    result = services.trigger_call(
        tenant,
        {
            "phone_number": "+14155552672",
            "agent_id": str(agent.pk),
            "sip_trunk_id": str(trunk.pk),
            "metadata": METADATA,
        },
    )

    assert result.accepted is False and result.call.conversation is None
    assert Conversation.objects.count() == 1


def test_a_tool_in_the_calls_conversation_sees_the_call_metadata(
    member, tenant, http_server, make_endpoint, make_agent, trunk
):
    http_server.route("POST", "/customers/*", lambda request: (200, {}, {"owed": 120, "echo": request.json()}))
    endpoint = make_endpoint(
        tenant,
        "log_promise",
        method="POST",
        path="/customers/{{customer_name}}/promises",
        body_type="json",
        body_template='{"name": "{{customer_name}}", "amount": {{amount_due}}, "date": "{{date}}"}',
        parameters=[{"name": "date", "location": "body", "type": "string", "required": True}],
        response_template="Thank you {{customer_name}}, we noted {{response.owed}} for {{date}}.",
    )
    call = place_call(member, make_agent(tenant, tools=[endpoint]), trunk)

    response = member.post(
        "/api/v1/tools/log_promise/invoke",
        {"conversation_id": str(call.conversation_id), "arguments": {"date": "2026-12-01"}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert http_server.count("/customers/Ada%20Lovelace/promises") == 1
    assert http_server.last.json() == {"name": "Ada Lovelace", "amount": 120, "date": "2026-12-01"}
    assert response.json()["say"] == "Thank you Ada Lovelace, we noted 120 for 2026-12-01."


def test_in_a_calls_conversation_only_the_agents_tools_run(
    member, tenant, http_server, make_endpoint, make_agent, trunk
):
    make_endpoint(tenant, "get_balance", path="/balance")
    call = place_call(member, make_agent(tenant, tools=[]), trunk)

    response = member.post(
        "/api/v1/tools/get_balance/invoke", {"conversation_id": str(call.conversation_id)}, format="json"
    )

    assert response.status_code == 403
    assert response.json() == {"error": "Tool get_balance is not one of the tools of this call's agent"}
    assert http_server.count() == 0
