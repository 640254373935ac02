"""The public call API /integration/v1 (SPEC §9): paths, shapes, exact messages, roles, tenants."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from calls.models import Call, CallEvent, CallStatus, WebhookDelivery
from calls.services import IDEMPOTENCY_MISMATCH_MESSAGE
from tests.calls.conftest import PHONE, age_starts, call_body

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def post_call(client, body, **headers):
    return client.post("/integration/v1/calls", body, format="json", **headers)


# --- agents and trunks -----------------------------------------------------------------------------


def test_agents_lists_active_agents_only(viewer, tenant, agent, make_agent, other_tenant):
    make_agent(tenant, agent_code="off", name="Off", status="inactive")
    make_agent(other_tenant, agent_code="theirs")
    response = viewer.get("/integration/v1/agents")
    assert response.status_code == 200
    assert response.json() == {
        "agents": [
            {
                "id": str(agent.pk),
                "name": "Collections",
                "agent_code": "collections",
                "status": "active",
                "input_schema": {"fields": ["amount_due", "due_date"], "sample_context": {"amount_due": "10 USD"}},
            }
        ]
    }


def test_sip_trunks_lists_active_trunks_only(viewer, tenant, trunk, make_trunk, other_tenant):
    make_trunk(tenant, name="Off", status="inactive")
    make_trunk(other_tenant, name="Theirs")
    response = viewer.get("/integration/v1/sip-trunks")
    assert response.status_code == 200
    assert response.json() == {
        "sip_trunks": [
            {
                "id": str(trunk.pk),
                "name": "Main",
                "trunk_phone": "+14155550123",
                "max_cps": 10,
                "max_channels": 10,
                "status": "active",
            }
        ]
    }


@pytest.mark.parametrize("path", ["/integration/v1/agents", "/integration/v1/sip-trunks", "/integration/v1/calls"])
def test_unauthenticated_is_401(db, path):
    for client in (APIClient(), _bearer("swb_not-a-real-key")):
        response = client.get(path)
        assert response.status_code == 401
        assert response.json() == {"error": "Invalid or inactive API key"}


def _bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_post_without_key_is_401(db, agent, trunk):
    response = post_call(APIClient(), call_body(agent, trunk))
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid or inactive API key"}


# --- POST /calls -----------------------------------------------------------------------------------


def test_member_places_a_call(member, tenant, agent, trunk):
    response = post_call(member, call_body(agent, trunk, callback_url="http://127.0.0.1:9/hook"))
    assert response.status_code == 201
    body = response.json()
    call = Call.objects.get()
    assert body == {
        "call_id": str(call.pk),
        "status": "triggered",
        "poll_url": f"/integration/v1/calls/{call.pk}/status",
    }
    assert call.tenant == tenant
    assert call.status == CallStatus.INITIATING
    assert call.phone_number == PHONE
    assert call.metadata == {"amount_due": "10 USD", "due_date": "2026-07-01"}
    assert call.callback_url == "http://127.0.0.1:9/hook"
    assert call.started_at is not None and call.dialer_due_at is not None
    assert list(call.events.values_list("status", "source", "ignored")) == [("Initiating", "api", False)]


def test_viewer_cannot_place_a_call(viewer, agent, trunk):
    response = post_call(viewer, call_body(agent, trunk))
    assert response.status_code == 403
    assert response.json() == {"error": "This action requires the member role"}
    assert not Call.objects.exists()


def test_phone_number_is_normalised(member, agent, trunk):
    response = post_call(member, call_body(agent, trunk, phone_number="+1 (415) 555-2671"))
    assert response.status_code == 201
    assert Call.objects.get().phone_number == "+14155552671"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"phone_number": ...}, "phone_number is required"),
        ({"phone_number": ""}, "phone_number is required"),
        ({"phone_number": "4155552671"}, "phone_number must be in E.164 format"),
        ({"phone_number": "+15555555555"}, "phone_number must be in E.164 format"),
        ({"phone_number": "+1415555267a"}, "phone_number must be in E.164 format"),
        ({"phone_number": 14155552671}, "phone_number must be in E.164 format"),
        ({"metadata": {}}, "metadata missing required keys: amount_due, due_date"),
        ({"metadata": {"due_date": "x"}}, "metadata missing required keys: amount_due"),
        ({"metadata": ...}, "metadata missing required keys: amount_due, due_date"),
        ({"metadata": ["amount_due"]}, "metadata must be a JSON object"),
        ({"callback_url": "ftp://example.com/hook"}, "callback_url must be a valid http or https URL"),
        ({"callback_url": "not a url"}, "callback_url must be a valid http or https URL"),
        ({"callback_url": "https://"}, "callback_url must be a valid http or https URL"),
        ({"callback_url": 12}, "callback_url must be a valid http or https URL"),
        ({"agent_id": ...}, "agent_id is required"),
        ({"sip_trunk_id": ...}, "sip_trunk_id is required"),
        ({"surprise": 1}, "Unknown field(s): surprise"),
    ],
)
def test_post_400_messages(member, agent, trunk, overrides, message):
    response = post_call(member, call_body(agent, trunk, **overrides))
    assert response.status_code == 400
    assert response.json() == {"error": message}
    assert not Call.objects.exists()


def test_inactive_agent_and_trunk(member, agent, trunk):
    agent.status = "inactive"
    agent.save()
    trunk.status = "inactive"
    trunk.save()
    response = post_call(member, call_body(agent, trunk))
    assert response.json() == {"error": "Agent is not active"}
    agent.status = "active"
    agent.save()
    response = post_call(member, call_body(agent, trunk))
    assert response.status_code == 400
    assert response.json() == {"error": "SIP trunk is not active"}


def test_checks_run_in_spec_order(member, agent, trunk):
    """Each message appears only once the ones listed before it in SPEC §9 are satisfied."""
    for obj in (agent, trunk):
        obj.status = "inactive"
        obj.save()
    good = call_body(agent, trunk)
    bad = call_body(agent, trunk, phone_number=..., metadata={}, callback_url="ftp://x")

    def error() -> str:
        return post_call(member, bad).json()["error"]

    assert error() == "phone_number is required"
    bad["phone_number"] = "0800"
    assert error() == "phone_number must be in E.164 format"
    bad["phone_number"] = good["phone_number"]
    assert error() == "metadata missing required keys: amount_due, due_date"
    bad["metadata"] = good["metadata"]
    assert error() == "Agent is not active"
    agent.status = "active"
    agent.save()
    assert error() == "SIP trunk is not active"
    trunk.status = "active"
    trunk.save()
    assert error() == "callback_url must be a valid http or https URL"
    del bad["callback_url"]
    assert post_call(member, bad).status_code == 201


def test_malformed_json_is_400(member):
    response = member.post("/integration/v1/calls", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"].startswith("Malformed request body")


def test_body_must_be_an_object(member):
    response = member.post("/integration/v1/calls", data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"error": "Request body must be a JSON object"}


def test_callback_url_refused_by_ssrf_policy(member, agent, trunk, settings):
    settings.OUTBOUND_ALLOW_PRIVATE_NETWORKS = False
    response = post_call(member, call_body(agent, trunk, callback_url="http://127.0.0.1:8000/hook"))
    assert response.status_code == 400
    assert response.json() == {
        "error": "callback_url is not allowed: destination not allowed: 127.0.0.1 is a loopback address"
    }


@pytest.mark.parametrize("field", ["agent_id", "sip_trunk_id"])
def test_unknown_or_foreign_ids_are_404(member, agent, trunk, other_tenant, make_agent, make_trunk, field):
    foreign = make_agent(other_tenant) if field == "agent_id" else make_trunk(other_tenant)
    message = "Agent not found" if field == "agent_id" else "SIP trunk not found"
    for value in (str(uuid.uuid4()), "not-a-uuid", str(foreign.pk), 42):
        response = post_call(member, call_body(agent, trunk, **{field: value}))
        assert response.status_code == 404, value
        assert response.json() == {"error": message}
    assert not Call.objects.exists()


# --- capacity --------------------------------------------------------------------------------------


def test_max_channels_gives_429_and_records_the_rejection(member, agent, trunk):
    trunk.max_channels, trunk.max_cps = 2, 100
    trunk.dialer_config = {"ring_seconds": 3, "talk_seconds": 27}
    trunk.save()
    for _ in range(2):
        assert post_call(member, call_body(agent, trunk)).status_code == 201
    response = post_call(member, call_body(agent, trunk, callback_url="http://127.0.0.1:9/hook"))
    assert response.status_code == 429
    rejected = Call.objects.get(status=CallStatus.REJECTED_CAPACITY)
    assert response.json() == {
        "error": "Trunk concurrency (max_channels) exhausted",
        "call_id": str(rejected.pk),
        "status": "rejected",
    }
    # The oldest live call is expected to hold its channel for ring + talk = 30 s from its start.
    assert 25 <= int(response["Retry-After"]) <= 30
    assert rejected.is_terminal and rejected.end_timestamp is not None and rejected.duration == 0
    assert rejected.started_at is None
    assert list(rejected.events.values_list("status", "source")) == [("Rejected — Capacity", "capacity")]
    delivery = WebhookDelivery.objects.get(call=rejected)
    assert delivery.event == "call.rejected"
    status = member.get(f"/integration/v1/calls/{rejected.pk}/status").json()
    assert status["call_status"] == "Rejected — Capacity" and status["is_terminal"] is True


def test_max_cps_gives_429_with_retry_after(member, agent, trunk):
    trunk.max_channels, trunk.max_cps = 100, 2
    trunk.save()
    assert post_call(member, call_body(agent, trunk)).status_code == 201
    assert post_call(member, call_body(agent, trunk)).status_code == 201
    Call.objects.update(started_at=timezone.now())  # however slow the machine, both started just now
    response = post_call(member, call_body(agent, trunk))
    assert response.status_code == 429
    rejected = Call.objects.get(status=CallStatus.REJECTED_CAPACITY)
    assert response.json() == {
        "error": "Trunk call rate (max_cps) exceeded",
        "call_id": str(rejected.pk),
        "status": "rejected",
    }
    assert response["Retry-After"] == "1"
    assert not WebhookDelivery.objects.exists()  # no callback_url, no notification


def test_cps_window_frees_after_a_second(member, agent, trunk):
    trunk.max_channels, trunk.max_cps = 100, 1
    trunk.save()
    assert post_call(member, call_body(agent, trunk)).status_code == 201
    assert post_call(member, call_body(agent, trunk)).status_code == 429
    # a second passes: the start recorded on the trunk (and on the call) leaves the window
    Call.objects.update(started_at=timezone.now() - timedelta(seconds=1.01))
    age_starts(trunk, 1.01)
    assert post_call(member, call_body(agent, trunk)).status_code == 201


def test_ended_calls_free_their_channel(member, agent, trunk):
    from calls.events import record_call_event

    trunk.max_channels = 1
    trunk.save()
    assert post_call(member, call_body(agent, trunk)).status_code == 201
    assert post_call(member, call_body(agent, trunk)).status_code == 429
    record_call_event(Call.objects.get(status="Initiating"), CallStatus.SIP_CALL_FAILED, "test")
    Call.objects.update(started_at=timezone.now() - timedelta(seconds=2))
    assert post_call(member, call_body(agent, trunk)).status_code == 201


# --- Idempotency-Key -------------------------------------------------------------------------------


def test_idempotent_retry_returns_the_first_call(member, agent, trunk):
    body = call_body(agent, trunk)
    first = post_call(member, body, HTTP_IDEMPOTENCY_KEY="order-42")
    again = post_call(member, dict(reversed(list(body.items()))), HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Call.objects.count() == 1


def test_idempotency_key_with_another_body_is_422(member, agent, trunk):
    post_call(member, call_body(agent, trunk), HTTP_IDEMPOTENCY_KEY="order-42")
    response = post_call(member, call_body(agent, trunk, phone_number="+447911123456"), HTTP_IDEMPOTENCY_KEY="order-42")
    assert response.status_code == 422
    assert response.json() == {"error": IDEMPOTENCY_MISMATCH_MESSAGE}
    assert Call.objects.count() == 1


def test_idempotency_keys_are_per_tenant_and_expire(
    member, agent, trunk, other_tenant, api_client_for, make_agent, make_trunk
):
    post_call(member, call_body(agent, trunk), HTTP_IDEMPOTENCY_KEY="k1")
    other = api_client_for(other_tenant, "member")
    response = post_call(
        other, call_body(make_agent(other_tenant), make_trunk(other_tenant)), HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 201
    Call.objects.filter(tenant=agent.tenant).update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
    response = post_call(member, call_body(agent, trunk), HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 201
    assert Call.objects.filter(tenant=agent.tenant).count() == 2


def test_rejected_call_does_not_hold_the_key(member, agent, trunk):
    trunk.max_channels = 1
    trunk.save()
    post_call(member, call_body(agent, trunk))
    assert post_call(member, call_body(agent, trunk), HTTP_IDEMPOTENCY_KEY="k").status_code == 429
    from calls.events import record_call_event

    for live in Call.objects.filter(status="Initiating"):
        record_call_event(live, CallStatus.COMPLETED, "test")
    assert post_call(member, call_body(agent, trunk), HTTP_IDEMPOTENCY_KEY="k").status_code == 201


def test_concurrent_duplicate_loses_to_the_unique_constraint(member, agent, trunk, tenant):
    """A request that passed the replay check while another inserted the key reads the winner's call."""
    from unittest import mock

    from calls import services

    body = call_body(agent, trunk)
    first = post_call(member, body, HTTP_IDEMPOTENCY_KEY="race")
    real_replay = services._replay
    calls_seen = []

    def replay_missing_once(*args):
        calls_seen.append(args)
        return None if len(calls_seen) == 1 else real_replay(*args)

    with mock.patch.object(services, "_replay", side_effect=replay_missing_once):
        second = post_call(member, body, HTTP_IDEMPOTENCY_KEY="race")
    assert second.status_code == 201
    assert second.json() == first.json()
    assert Call.objects.count() == 1


# --- status and list -------------------------------------------------------------------------------


def test_status_shape(member, viewer, agent, trunk):
    call_id = post_call(member, call_body(agent, trunk)).json()["call_id"]
    response = viewer.get(f"/integration/v1/calls/{call_id}/status")
    assert response.status_code == 200
    body = response.json()
    assert list(body) == [
        "id",
        "phone_number",
        "call_status",
        "is_terminal",
        "stalled",
        "call_outcome",
        "duration",
        "start_timestamp",
        "end_timestamp",
        "transcript_url",
        "recording_url",
        "last_updated",
    ]
    assert body["id"] == call_id and body["phone_number"] == PHONE
    assert body["call_status"] == "Initiating" and body["is_terminal"] is False and body["stalled"] is False
    assert body["call_outcome"] is None and body["duration"] is None
    assert body["start_timestamp"] is None and body["end_timestamp"] is None
    assert ISO_MS.match(body["last_updated"])


def test_status_of_unknown_or_foreign_call_is_404(member, other_client, agent, trunk):
    call_id = post_call(member, call_body(agent, trunk)).json()["call_id"]
    for client, path_id in ((other_client, call_id), (member, str(uuid.uuid4())), (member, "nope")):
        response = client.get(f"/integration/v1/calls/{path_id}/status")
        assert response.status_code == 404
        assert response.json() == {"error": "Not found."}


def test_list_calls_filters_and_paginates(viewer, member, agent, trunk, tenant, make_agent, other_client):
    other_agent = make_agent(tenant, agent_code="other", input_schema={"fields": []})
    ids = [post_call(member, call_body(agent, trunk)).json()["call_id"] for _ in range(3)]
    other_id = post_call(member, call_body(other_agent, trunk, metadata={})).json()["call_id"]
    Call.objects.filter(pk=ids[0]).update(status=CallStatus.COMPLETED, created_at=timezone.now() - timedelta(days=3))

    everything = viewer.get("/integration/v1/calls").json()
    assert everything["count"] == 4 and len(everything["calls"]) == 4
    assert set(everything["calls"][0]) >= {"id", "call_status", "agent_id", "sip_trunk_id", "created_at"}

    for query in (f"agent_id={other_agent.pk}", f"agent={other_agent.pk}", "agent=other"):
        by_agent = viewer.get(f"/integration/v1/calls?{query}").json()
        assert [c["id"] for c in by_agent["calls"]] == [other_id], query
    done = viewer.get("/integration/v1/calls", {"status": "Completed"}).json()
    assert [c["id"] for c in done["calls"]] == [ids[0]]
    live = viewer.get("/integration/v1/calls", {"status": "Initiating,Ringing"}).json()
    assert live["count"] == 3
    since = (timezone.now() - timedelta(days=1)).date().isoformat()
    recent = viewer.get("/integration/v1/calls", {"created_after": since}).json()
    assert recent["count"] == 3
    old = viewer.get("/integration/v1/calls", {"created_before": since}).json()
    assert [c["id"] for c in old["calls"]] == [ids[0]]
    three_days_ago = (timezone.now() - timedelta(days=3)).date().isoformat()
    assert [c["id"] for c in viewer.get("/integration/v1/calls", {"date": three_days_ago}).json()["calls"]] == [ids[0]]
    page = viewer.get("/integration/v1/calls", {"page_size": 2}).json()
    assert len(page["calls"]) == 2 and page["next"] and page["previous"] is None
    assert other_client.get("/integration/v1/calls").json()["count"] == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "Done"}, "status must be one of: "),
        ({"agent_id": "x"}, "agent_id must be a UUID"),
        ({"created_after": "yesterday"}, "created_after must be an ISO 8601 date or date-time"),
        ({"date": "2026-13-01"}, "date must be an ISO 8601 date (YYYY-MM-DD)"),
        ({"sip_trunk_id": "x"}, "sip_trunk_id must be a UUID"),
    ],
)
def test_list_calls_rejects_bad_filters(viewer, params, message):
    response = viewer.get("/integration/v1/calls", params)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)


def test_stalled_is_computed(viewer, member, agent, trunk):
    from calls.events import record_call_event

    call = Call.objects.get(pk=post_call(member, call_body(agent, trunk)).json()["call_id"])
    record_call_event(call, CallStatus.ANSWERED, "test")
    path = f"/integration/v1/calls/{call.pk}/status"
    assert viewer.get(path).json()["stalled"] is False
    Call.objects.filter(pk=call.pk).update(last_updated=timezone.now() - timedelta(minutes=10, seconds=1))
    body = viewer.get(path).json()
    assert body["stalled"] is True and body["call_status"] == "Answered"
    assert ISO_MS.match(body["start_timestamp"])
    # Not answered (ringing for long) is not stalled.
    Call.objects.filter(pk=call.pk).update(status=CallStatus.RINGING)
    assert viewer.get(path).json()["stalled"] is False
    assert CallEvent.objects.filter(call=call).count() == 2
