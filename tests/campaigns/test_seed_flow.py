"""Seed 000's own example, end to end on a real worker: rows → a before-call lookup → a simulated call
whose callee follows a script and whose agent is the real runtime (scripted AI provider) → the
analysis → `POST /appointments` receiving exactly the row's and the analysis' values."""

from __future__ import annotations

import json

import pytest

from calls.models import Agent, SipTrunk
from campaigns.models import Campaign, CampaignRow
from tests.calls.conftest import FAST_DIALER
from tests.campaigns.conftest import add_rows
from tests.support.llm_server import LLM_KEY
from tests.support.worker import wait_for

pytestmark = pytest.mark.worker

SCRIPT = ["Yes, this is Rahul.", "Tuesday the 20th at 5 pm works. Bye."]
ANALYSIS_ANSWER = {
    "disposition": "interested",
    "summary": "Rahul booked an appointment for 20 June at 17:00.",
    "sentiment": "positive",
    "extracted": {"preferred_date": "2026-06-20", "preferred_time": "17:00"},
}


@pytest.fixture
def llm_for_workers(llm, monkeypatch):
    """The scripted provider, also for the worker started after this fixture (it reads the env)."""
    for name, value in {"LLM_BASE_URL": llm.base_url, "LLM_API_KEY": LLM_KEY, "LLM_MODEL": "test-model"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LLM_MAX_RETRIES", "0")
    return llm


def test_seed_000_rows_lookup_call_analysis_appointment(
    llm_for_workers, calls_worker, clients, tenant, make_endpoint, http_server
):
    http_server.route("GET", "/customers/C-17", lambda r: (200, {}, {"customer": {"name": "Rahul"}}))
    http_server.route("POST", "/appointments", lambda r: (201, {}, {"id": "A-1"}))
    http_server.route("POST", "/hook", lambda r: (200, {}, "ok"))
    lookup = make_endpoint(
        name="lookup",
        path="/customers/{customerId}",
        parameters=[{"name": "customerId", "location": "path", "type": "string", "required": True}],
    )
    appointments = make_endpoint(
        name="appointments",
        method="POST",
        path="/appointments",
        body_type="json",
        body_template=(
            '{"customerId": "{{row.customer_id}}", "date": "{{extracted.preferred_date}}",'
            ' "time": "{{extracted.preferred_time}}", "classification": "{{ai_classification}}"}'
        ),
    )
    agent = Agent.objects.create(
        tenant=tenant,
        name="Bookings",
        agent_code="bookings",
        prompt="You are Asha booking an appointment with {{customer_name}}.",
        first_message="Hello {{customer_name}}, this is Asha about your appointment.",
        input_schema={"fields": ["customer_id"], "sample_context": {}},
        analysis={
            "dispositions": ["interested", "not_interested"],
            "extract": [
                {"name": "preferred_date", "type": "date", "description": "the appointment day"},
                {"name": "preferred_time", "type": "string", "description": "the appointment time"},
            ],
        },
    )
    trunk = SipTrunk.objects.create(
        tenant=tenant,
        name="Scripted",
        trunk_phone="+14155550123",
        max_cps=10,
        max_channels=10,
        dialer_config={**FAST_DIALER, "caller": {"script": SCRIPT}},
    )
    llm = llm_for_workers
    llm.say("Which day suits you?")
    llm.call_tool("end_call", {"reason": "booked"})
    llm.json(ANALYSIS_ANSWER)
    window = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "23:59"}
    campaign = Campaign.objects.create(
        tenant=tenant,
        name="Seed 000",
        agent=agent,
        sip_trunk=trunk,
        calling_window=window,
        callback_url=http_server.url("/hook"),
        steps={
            "before_call": [
                {
                    "type": "api_call",
                    "endpoint": str(lookup.pk),
                    "params": {"customerId": "{{row.customer_id}}"},
                    "map": {"customer_name": "customer.name"},
                    "on_error": "fail",
                }
            ],
            "after_call": [{"type": "api_call", "endpoint": str(appointments.pk), "on_error": "fail"}],
        },
    )
    add_rows(campaign, {"phone_number": "+14155552671", "customer_id": "C-17"})

    assert clients["admin"].post(f"/api/v1/campaigns/{campaign.pk}/start").status_code == 200
    wait_for(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", timeout=90)

    booked = [r for r in http_server.requests if r.path == "/appointments"]
    assert len(booked) == 1
    assert json.loads(booked[0].body) == {
        "customerId": "C-17",
        "date": "2026-06-20",
        "time": "17:00",
        "classification": "interested",
    }
    row = CampaignRow.objects.get(campaign=campaign)
    assert (row.status, row.disposition, row.extracted) == ("completed", "interested", ANALYSIS_ANSWER["extracted"])
    assert row.call.metadata["customer_name"] == "Rahul"
    first_turn = row.call.conversation.messages.order_by("created_at").first()
    assert first_turn.text == "Hello Rahul, this is Asha about your appointment."
    wait_for(lambda: len([r for r in http_server.requests if r.path == "/hook"]) == 2, timeout=30)
    hooks = [json.loads(r.body) for r in http_server.requests if r.path == "/hook"]
    assert sorted(h["event"] for h in hooks) == ["call.completed", "campaign.completed"]
    call_hook = next(h for h in hooks if h["event"] == "call.completed")
    assert call_hook["campaign_id"] == str(campaign.pk) and call_hook["row"]["data"]["customer_id"] == "C-17"
    assert call_hook["call_outcome"] == ANALYSIS_ANSWER
