"""A call placed through POST /integration/v1/calls whose simulated callee follows a script: the agent's
real runtime talks on a real Celery worker, the outcome is the analysis, the callback carries it."""

from __future__ import annotations

import pytest

from calls.models import Call, CallStatus, SipTrunk
from tests.calls.conftest import FAST_DIALER, verify_like_a_receiver
from tests.runtime.conftest import METADATA
from tests.support.worker import wait_for

SCRIPT = ["Yes, it's Rahul. What is my balance? Account AC-42.", "I'll pay on the 20th of June. Bye."]
ANALYSIS_ANSWER = {
    "disposition": "promised_to_pay",
    "summary": "Rahul asked for his balance and promised to pay on 20 June.",
    "sentiment": "positive",
    "extracted": {"preferred_date": "2026-06-20", "amount": None, "channel": "upi"},
}


def scripted_trunk(tenant, caller) -> SipTrunk:
    return SipTrunk.objects.create(
        tenant=tenant,
        name="Simulated",
        trunk_phone="+14155550123",
        max_cps=10,
        max_channels=10,
        dialer_config={**FAST_DIALER, "caller": caller},
    )


def place(member, agent, trunk, callback_url: str = ""):
    body = {"phone_number": "+14155552671", "agent_id": str(agent.pk), "sip_trunk_id": str(trunk.pk)}
    body["metadata"] = dict(METADATA)
    if callback_url:
        body["callback_url"] = callback_url
    response = member.post("/integration/v1/calls", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.mark.worker
def test_a_scripted_call_runs_the_real_conversation_end_to_end(
    llm_for_workers, calls_worker, http_server, member, viewer, tenant, voice_agent, customer_api
):
    llm = llm_for_workers
    llm.call_tool("get_balance", {"account": "AC-42"}).say("Would you like to pay today?")
    llm.call_tool("end_call", {"reason": "promised to pay"})
    llm.json(ANALYSIS_ANSWER)
    http_server.route("POST", "/hook", lambda request: (200, {}, "ok"))
    trunk = scripted_trunk(tenant, {"script": SCRIPT})

    placed = place(member, voice_agent, trunk, http_server.url("/hook"))
    wait_for(lambda: http_server.count("/hook") == 1, timeout=60)

    status = viewer.get(placed["poll_url"]).json()
    assert status["call_status"] == "Completed"
    assert status["call_outcome"] == ANALYSIS_ANSWER
    assert customer_api.count("/balance") == 1 and customer_api.last.query == {"account": "AC-42"}
    payload = verify_like_a_receiver(tenant.webhook_secret, http_server.last)
    assert payload["call_outcome"] == ANALYSIS_ANSWER
    assert payload["transcript_url"] == status["transcript_url"]
    assert status["transcript_url"].endswith(f"/integration/v1/calls/{placed['call_id']}/transcript")

    transcript = viewer.get(f"/integration/v1/calls/{placed['call_id']}/transcript").json()
    said = [(m["role"], m["text"]) for m in transcript["messages"]]
    assert said == [
        ("agent", "Hello Rahul, this is Asha from Acme Finance about your payment of 150000 rupees."),
        ("caller", SCRIPT[0]),
        ("agent", "Let me check that for you."),
        ("tool", "get_balance: success"),
        ("agent", "Your current balance is 150000 rupees."),
        ("agent", "Would you like to pay today?"),
        ("caller", SCRIPT[1]),
        ("tool", "end_call: ended"),
        ("agent", "Thank you Rahul, goodbye."),
    ]
    assert all(m["at"].endswith("Z") for m in transcript["messages"])


@pytest.mark.worker
def test_without_a_provider_a_call_with_a_caller_is_trigger_failed(calls_worker, member, tenant, voice_agent):
    trunk = scripted_trunk(tenant, {"script": ["Hello?"]})
    placed = place(member, voice_agent, trunk)
    call = wait_for(lambda: Call.objects.filter(pk=placed["call_id"], status=CallStatus.TRIGGER_FAILED).first())
    assert call.rejection_reason == "this agent needs an AI provider"
    assert call.events.get(status=CallStatus.TRIGGER_FAILED).detail == {"reason": "this agent needs an AI provider"}


def test_the_transcript_is_scoped_to_the_tenant(other_client, member, tenant, voice_agent, trunk_without_caller):
    placed = place(member, voice_agent, trunk_without_caller)
    assert other_client.get(f"/integration/v1/calls/{placed['call_id']}/transcript").status_code == 404
    response = member.get(f"/integration/v1/calls/{placed['call_id']}/transcript")
    assert response.json() == {"call_id": placed["call_id"], "messages": []}


@pytest.fixture
def trunk_without_caller(tenant):
    return SipTrunk.objects.create(tenant=tenant, name="Plain", trunk_phone="+14155550124", dialer_config=FAST_DIALER)


@pytest.mark.parametrize(
    "caller, message",
    [
        ({"script": []}, "caller.script must be a non-empty list of lines"),
        ({"script": ["a"], "persona": "b"}, "either a script"),
        ({"persona": "Rahul", "max_turns": 0}, "caller.max_turns must be a whole number between 1 and 50"),
        ({"voice": "x"}, "either a script"),
    ],
)
def test_a_bad_caller_is_a_clear_400(owner_client, caller, message):
    body = {"name": "T", "trunk_phone": "+14155550125", "dialer_config": {"caller": caller}}
    response = owner_client.post("/api/v1/sip-trunks", body, format="json")
    assert response.status_code == 400
    assert message in str(response.json())
