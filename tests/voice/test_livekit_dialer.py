"""The livekit dialer against a local Twirp server, through the real livekit-api client (SPEC §16)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from calls import dialing
from calls.dialers import livekit
from calls.models import Call, CallStatus
from tests.support.http_servers import free_port
from tests.voice.conftest import METADATA, PHONE, TRUNK_PHONE, place_and_dial, trigger


def test_answered_call_dispatches_the_agent_and_dials_the_callee(tenant, voice_agent, livekit_trunk, livekit_server):
    call = trigger(tenant, voice_agent, livekit_trunk).call
    call = place_and_dial(call)

    assert call.status == CallStatus.ANSWERED
    assert call.provider_call_id == "SCL_test1"
    assert call.start_timestamp is not None
    dispatch, sip = livekit_server.of("CreateDispatch"), livekit_server.of("CreateSIPParticipant")
    assert len(dispatch) == 1 and len(sip) == 1
    # The dispatch: agent name = agent code, into call-<id>, with the call id and its metadata.
    assert dispatch[0].message.agent_name == "asha-collections"
    assert dispatch[0].message.room == f"call-{call.pk}"
    assert json.loads(dispatch[0].message.metadata) == {"call_id": str(call.pk), "metadata": METADATA}
    assert dispatch[0].claims.video.room_admin is True
    assert dispatch[0].claims.video.room == f"call-{call.pk}"
    # The SIP participant: the callee's number from the trunk's number, on the LiveKit trunk.
    request = sip[0].message
    assert request.sip_trunk_id == "ST_outbound1"
    assert request.sip_call_to == PHONE
    assert request.sip_number == TRUNK_PHONE
    assert request.room_name == f"call-{call.pk}"
    assert request.participant_identity == "callee"
    assert request.ringing_timeout.seconds == 30
    assert request.max_call_duration.seconds == 1800
    assert request.wait_until_answered is True
    assert sip[0].claims.sip.call is True
    # (the server verified the JWT: HS256 with the trunk secret, issuer = the trunk key, not expired)
    assert livekit_server.of("DeleteRoom") == []
    # Answered calls get a guard step at max_call_duration in case the room's end is never reported.
    assert call.dialer_state == {"phase": "answered"}
    assert call.dialer_due_at > timezone.now() + timedelta(seconds=1800)
    events = list(call.events.values_list("status", "source", "ignored"))
    assert events == [("Initiating", "api", False), ("Answered", "livekit", False)]


def test_trunk_timeouts_reach_the_sip_request(tenant, voice_agent, make_livekit_trunk, livekit_server):
    trunk = make_livekit_trunk(config={"ringing_timeout": 12, "max_call_duration": 300})
    place_and_dial(trigger(tenant, voice_agent, trunk).call)
    request = livekit_server.of("CreateSIPParticipant")[0].message
    assert (request.ringing_timeout.seconds, request.max_call_duration.seconds) == (12, 300)


@pytest.mark.parametrize(
    ("http_status", "code", "sip_code", "expected"),
    [
        (429, "resource_exhausted", 486, CallStatus.DECLINE),
        (403, "permission_denied", 600, CallStatus.DECLINE),
        (403, "permission_denied", 603, CallStatus.DECLINE),
        (503, "unavailable", 480, CallStatus.SIP_CALL_FAILED),
        (504, "deadline_exceeded", 408, CallStatus.SIP_CALL_FAILED),
        (503, "unavailable", 503, CallStatus.SIP_CALL_FAILED),
        (404, "not_found", 404, CallStatus.SIP_CALL_FAILED),
        (504, "deadline_exceeded", None, CallStatus.SIP_CALL_FAILED),  # no answer before ringing_timeout
        (500, "internal", None, CallStatus.SIP_CALL_FAILED),
    ],
)
def test_sip_failures_map_to_call_statuses(
    tenant, voice_agent, livekit_trunk, livekit_server, http_status, code, sip_code, expected
):
    livekit_server.fail(
        "CreateSIPParticipant", status=http_status, code=code, msg="SIP says no", sip_status_code=sip_code
    )
    call = place_and_dial(trigger(tenant, voice_agent, livekit_trunk).call)

    assert call.status == expected
    assert call.is_terminal and call.duration == 0
    event = call.events.get(status=expected)
    assert event.source == "livekit"
    assert event.detail["step"] == "sip_participant"
    assert event.detail.get("sip_status_code") == sip_code
    # A call that was not answered needs no room: the dialer deletes it (the agent leaves with it).
    assert [c.message.room for c in livekit_server.of("DeleteRoom")] == [f"call-{call.pk}"]
    # Exactly one attempt: the SDK's failover replay is off, so a phone never rings twice.
    assert len(livekit_server.of("CreateSIPParticipant")) == 1


def test_unknown_livekit_trunk_is_trigger_failed(tenant, voice_agent, livekit_trunk, livekit_server):
    livekit_server.unknown_trunks.add("ST_outbound1")
    call = place_and_dial(trigger(tenant, voice_agent, livekit_trunk).call)
    assert call.status == CallStatus.TRIGGER_FAILED
    assert call.events.get(status=CallStatus.TRIGGER_FAILED).detail["code"] == "not_found"


def test_wrong_credentials_are_trigger_failed_before_anything_rings(
    tenant, voice_agent, make_livekit_trunk, livekit_server
):
    trunk = make_livekit_trunk(secrets={"api_key": "APItestkey123", "api_secret": "not-the-secret-" * 3})
    call = place_and_dial(trigger(tenant, voice_agent, trunk).call)
    assert call.status == CallStatus.TRIGGER_FAILED
    detail = call.events.get(status=CallStatus.TRIGGER_FAILED).detail
    assert detail["step"] == "dispatch" and detail["code"] == "unauthenticated"
    assert livekit_server.calls == []  # the server refused the token: nothing recorded, nothing dialed
    assert "not-the-secret" not in json.dumps(detail)


def test_failed_dispatch_dials_nobody(tenant, voice_agent, livekit_trunk, livekit_server):
    livekit_server.fail("CreateDispatch", status=503, code="unavailable", msg="no agent workers")
    call = place_and_dial(trigger(tenant, voice_agent, livekit_trunk).call)
    assert call.status == CallStatus.TRIGGER_FAILED
    assert livekit_server.of("CreateSIPParticipant") == []


def test_unreachable_server_is_trigger_failed(tenant, voice_agent, make_livekit_trunk, livekit_server):
    trunk = make_livekit_trunk(config={"url": f"http://127.0.0.1:{free_port()}"})  # nobody listens there
    call = place_and_dial(trigger(tenant, voice_agent, trunk).call)
    assert call.status == CallStatus.TRIGGER_FAILED
    assert call.events.get(status=CallStatus.TRIGGER_FAILED).detail["step"] == "dispatch"


def test_secret_references_resolve_at_dial_time(tenant, voice_agent, make_livekit_trunk, livekit_server, monkeypatch):
    trunk = make_livekit_trunk(secrets={"api_key": "env:SWB_LK_TEST_KEY", "api_secret": "env:SWB_LK_TEST_SECRET"})
    monkeypatch.setenv("SWB_LK_TEST_KEY", livekit_server.api_key)
    monkeypatch.setenv("SWB_LK_TEST_SECRET", livekit_server.api_secret)
    assert place_and_dial(trigger(tenant, voice_agent, trunk).call).status == CallStatus.ANSWERED

    monkeypatch.delenv("SWB_LK_TEST_SECRET")
    livekit_server.calls.clear()
    call = place_and_dial(trigger(tenant, voice_agent, trunk, phone_number="+14155552672").call)
    assert call.status == CallStatus.TRIGGER_FAILED
    assert call.events.get(status=CallStatus.TRIGGER_FAILED).detail == {
        "reason": "environment variable SWB_LK_TEST_SECRET is not set"
    }
    assert livekit_server.calls == []


def test_private_livekit_url_is_refused_by_the_ssrf_policy(
    tenant, voice_agent, livekit_trunk, livekit_server, settings
):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    call = place_and_dial(trigger(tenant, voice_agent, livekit_trunk).call)
    assert call.status == CallStatus.TRIGGER_FAILED
    reason = call.events.get(status=CallStatus.TRIGGER_FAILED).detail["reason"]
    assert reason == "destination not allowed: 127.0.0.1 is a loopback address"
    assert livekit_server.calls == []


def test_a_redelivered_dial_never_rings_twice(tenant, voice_agent, livekit_trunk, livekit_server):
    call = trigger(tenant, voice_agent, livekit_trunk).call
    dialing.advance_call(call.pk)
    livekit.dial(call.pk)
    livekit.dial(call.pk)  # the broker delivers the task again (e.g. its first worker died)
    assert len(livekit_server.of("CreateSIPParticipant")) == 1
    assert len(livekit_server.of("CreateDispatch")) == 1


def _due_now(call: Call) -> None:
    Call.objects.filter(pk=call.pk).update(dialer_due_at=timezone.now() - timedelta(seconds=1))


def test_a_call_no_dial_worker_takes_ends_trigger_failed(tenant, voice_agent, livekit_trunk, livekit_server):
    call = trigger(tenant, voice_agent, livekit_trunk).call
    dialing.advance_call(call.pk)  # queued for the dial queue, which nobody consumes
    call.refresh_from_db()
    assert call.dialer_state["phase"] == "queued"
    assert call.dialer_due_at > timezone.now() + timedelta(seconds=290)
    _due_now(call)
    dialing.advance_call(call.pk)  # the sweep runs the guard step
    call.refresh_from_db()
    assert call.status == CallStatus.TRIGGER_FAILED
    assert "no dialing worker took the call" in call.events.get(status=CallStatus.TRIGGER_FAILED).detail["reason"]
    livekit.dial(call.pk)  # the message arrives late: nothing is dialed
    assert livekit_server.calls == []


def test_a_dial_whose_worker_died_ends_sip_call_failed(tenant, voice_agent, livekit_trunk, livekit_server):
    call = trigger(tenant, voice_agent, livekit_trunk).call
    dialing.advance_call(call.pk)
    assert livekit._claim(call.pk, 32)  # a worker claimed it, then was killed mid-dial
    call.refresh_from_db()
    assert call.dialer_due_at > timezone.now() + timedelta(seconds=60)
    _due_now(call)
    dialing.advance_call(call.pk)
    call.refresh_from_db()
    assert call.status == CallStatus.SIP_CALL_FAILED


def test_an_answered_call_whose_end_is_never_reported_completes_at_max_duration(
    tenant, voice_agent, livekit_trunk, livekit_server
):
    call = place_and_dial(trigger(tenant, voice_agent, livekit_trunk).call)
    _due_now(call)
    dialing.advance_call(call.pk)
    call.refresh_from_db()
    assert call.status == CallStatus.COMPLETED
    assert call.duration == 1800
    assert "never reported" in call.events.get(status=CallStatus.COMPLETED).detail["reason"]


def test_capacity_limits_hold_for_livekit_trunks(tenant, voice_agent, make_livekit_trunk, livekit_server):
    trunk = make_livekit_trunk(max_channels=1)
    first = trigger(tenant, voice_agent, trunk)
    assert first.accepted
    place_and_dial(first.call)  # answered: the one channel is in use until the room ends
    second = trigger(tenant, voice_agent, trunk, phone_number="+14155552672")
    assert not second.accepted
    assert second.message == "Trunk concurrency (max_channels) exhausted"
    assert second.call.status == CallStatus.REJECTED_CAPACITY
    assert len(livekit_server.of("CreateSIPParticipant")) == 1  # the rejected call never reached LiveKit
    livekit.complete(first.call, None, detail={"reason": "test"})
    assert trigger(tenant, voice_agent, trunk, phone_number="+14155552673").accepted


def test_max_cps_holds_for_livekit_trunks(tenant, voice_agent, make_livekit_trunk, livekit_server):
    trunk = make_livekit_trunk(max_cps=1, max_channels=5)
    assert trigger(tenant, voice_agent, trunk).accepted
    refused = trigger(tenant, voice_agent, trunk, phone_number="+14155552672")
    assert refused.message == "Trunk call rate (max_cps) exceeded"
    assert 1 <= refused.retry_after <= 1


@pytest.mark.django_db(transaction=True)  # inside a loop the ORM uses a connection of its own
def test_dialing_works_where_an_event_loop_already_runs(
    tenant, voice_agent, livekit_trunk, livekit_server, monkeypatch
):
    """asyncio.run refuses inside a running loop (an async host, a test harness): the client gets a thread."""
    from calls.dialers.livekit_client import run_sync

    call = trigger(tenant, voice_agent, livekit_trunk).call
    dialing.advance_call(call.pk)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # dial()'s own ORM calls, inside the loop here

    async def inside_a_loop():
        livekit.dial(call.pk)

    run_sync(inside_a_loop)
    call.refresh_from_db()
    assert call.status == CallStatus.ANSWERED
