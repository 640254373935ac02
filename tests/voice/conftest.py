"""Fixtures of the voice suite (SPEC §16): a LiveKit trunk pointed at the local Twirp server, and a
helper that takes a call through the dialer's steps in this process (tasks run inline)."""

from __future__ import annotations

import pytest

from calls import dialing, services
from calls.dialers import livekit
from calls.models import Agent, Call, SipTrunk
from tests.support.livekit_server import API_KEY, API_SECRET, require_voice_packages

PHONE = "+14155552671"
TRUNK_PHONE = "+14155550123"
METADATA = {"customer_name": "Rahul", "amount_due": "150000"}


@pytest.fixture(autouse=True)
def _voice_packages():
    require_voice_packages()


@pytest.fixture
def voice_agent(tenant) -> Agent:
    return Agent.objects.create(
        tenant=tenant,
        name="Asha",
        agent_code="asha-collections",
        voice="alloy",
        language="en-IN",
        input_schema={"fields": ["customer_name"], "sample_context": {}},
    )


@pytest.fixture
def make_livekit_trunk(tenant, livekit_server):
    def make(**overrides) -> SipTrunk:
        config = {"url": livekit_server.url, "sip_trunk_id": "ST_outbound1", **overrides.pop("config", {})}
        fields = {
            "name": "LiveKit",
            "trunk_phone": TRUNK_PHONE,
            "max_cps": 10,
            "max_channels": 10,
            "dialer": "livekit",
            "dialer_config": livekit.LiveKitDialer().validate_config(config),
            "dialer_secrets": overrides.pop("secrets", {"api_key": API_KEY, "api_secret": API_SECRET}),
            **overrides,
        }
        return SipTrunk.objects.create(tenant=tenant, **fields)

    return make


@pytest.fixture
def livekit_trunk(make_livekit_trunk) -> SipTrunk:
    return make_livekit_trunk()


def trigger(tenant, agent, trunk, **overrides) -> services.TriggerResult:
    body = {
        "phone_number": PHONE,
        "agent_id": str(agent.pk),
        "sip_trunk_id": str(trunk.pk),
        "metadata": dict(METADATA),
        **overrides,
    }
    return services.trigger_call(tenant, body)


def place_and_dial(call: Call) -> Call:
    """What the two workers do: `calls.advance_call` (default queue), then `calls.livekit_dial`."""
    dialing.advance_call(call.pk)
    livekit.dial(call.pk)
    call.refresh_from_db()
    return call
