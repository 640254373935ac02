"""POST /hooks/livekit with webhooks signed exactly as LiveKit signs them (SPEC §16)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.test import Client

from calls.models import CallEvent, CallStatus
from tests.support.livekit_server import API_KEY, API_SECRET
from tests.voice.conftest import place_and_dial, trigger

URL = "/hooks/livekit"


def event_body(event: str, room: str, *, identity: str | None = None, event_id: str | None = None, at=None) -> str:
    """The JSON LiveKit posts: its WebhookEvent protobuf in protojson (camelCase) form."""
    from google.protobuf.json_format import MessageToJson
    from livekit.protocol.webhook import WebhookEvent

    message = WebhookEvent(event=event, id=event_id or f"EV_{uuid.uuid4().hex[:12]}", created_at=int(at or time.time()))
    message.room.name = room
    if identity:
        message.participant.identity = identity
    return MessageToJson(message)


def sign(body: str, *, key: str = API_KEY, secret: str = API_SECRET, ttl: timedelta = timedelta(minutes=5)) -> str:
    """As LiveKit's webhook notifier does: a JWT whose sha256 claim is the base64 SHA-256 of the body."""
    from livekit.api import AccessToken

    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return AccessToken(key, secret).with_sha256(digest).with_ttl(ttl).to_jwt()


def post(body: str, token: str | None) -> object:
    headers = {"HTTP_AUTHORIZATION": token} if token is not None else {}
    return Client().post(URL, body, content_type="application/webhook+json", **headers)


@pytest.fixture
def answered(tenant, voice_agent, livekit_trunk, livekit_server):
    return place_and_dial(trigger(tenant, voice_agent, livekit_trunk).call)


def test_callee_leaving_completes_the_call_with_its_duration(answered):
    room = f"call-{answered.pk}"
    ended_at = answered.start_timestamp.timestamp() + 97
    body = event_body("participant_left", room, identity="callee", at=ended_at)
    response = post(body, sign(body))

    assert response.status_code == 200
    assert response.json() == {"status": "recorded"}
    answered.refresh_from_db()
    assert answered.status == CallStatus.COMPLETED
    # LiveKit's created_at is whole seconds; the duration runs from the recorded answer to it.
    assert answered.duration == round(int(ended_at) - answered.start_timestamp.timestamp())
    assert 96 <= answered.duration <= 97
    event = answered.events.get(status=CallStatus.COMPLETED)
    assert (event.source, event.detail["event"], event.detail["identity"]) == ("livekit", "participant_left", "callee")


def test_room_finished_completes_the_call(answered):
    body = event_body("room_finished", f"call-{answered.pk}")
    assert post(body, sign(body)).status_code == 200
    answered.refresh_from_db()
    assert answered.status == CallStatus.COMPLETED


def test_callee_joining_is_ringing_and_every_event_is_recorded(tenant, voice_agent, livekit_trunk, livekit_server):
    call = trigger(tenant, voice_agent, livekit_trunk).call
    room = f"call-{call.pk}"
    for name, identity in [("room_started", None), ("participant_joined", "callee"), ("track_published", "callee")]:
        body = event_body(name, room, identity=identity)
        assert post(body, sign(body)).status_code == 200
    call.refresh_from_db()
    assert call.status == CallStatus.RINGING
    events = [(e.status, e.detail["event"], e.ignored) for e in call.events.filter(source="livekit")]
    assert events == [
        ("Initiating", "room_started", True),
        ("Ringing", "participant_joined", False),
        ("Ringing", "track_published", True),
    ]


def test_the_agent_leaving_does_not_end_the_call(answered):
    body = event_body("participant_left", f"call-{answered.pk}", identity="agent-AJ_1")
    assert post(body, sign(body)).status_code == 200
    answered.refresh_from_db()
    assert answered.status == CallStatus.ANSWERED


def test_a_repeated_event_changes_nothing(answered):
    body = event_body("participant_left", f"call-{answered.pk}", identity="callee", event_id="EV_same")
    token = sign(body)
    assert post(body, token).json() == {"status": "recorded"}
    answered.refresh_from_db()
    before = (answered.status, answered.duration, answered.last_updated, answered.events.count())
    # LiveKit retries, or someone replays the captured request within the token's lifetime.
    assert post(body, token).json() == {"status": "duplicate"}
    answered.refresh_from_db()
    assert (answered.status, answered.duration, answered.last_updated, answered.events.count()) == before


def test_a_late_end_of_a_finished_call_is_recorded_and_ignored(answered):
    first = event_body("participant_left", f"call-{answered.pk}", identity="callee")
    post(first, sign(first))
    second = event_body("room_finished", f"call-{answered.pk}")
    assert post(second, sign(second)).status_code == 200
    answered.refresh_from_db()
    ignored = answered.events.get(detail__event="room_finished")
    assert ignored.ignored and ignored.ignored_reason == "call is already final (Completed)"


@pytest.mark.parametrize(
    "forge",
    [
        lambda body: sign(body, secret="someone-elses-secret-of-32-characters!"),
        lambda body: sign(body, key="APIotherkey"),
        lambda body: sign('{"event": "room_finished"}'),  # signed for another body
        lambda body: sign(body, ttl=timedelta(seconds=-120)),  # expired: an old capture replayed
        lambda body: "not-a-jwt",
        lambda body: "",
    ],
    ids=["wrong-secret", "wrong-key", "other-body", "expired", "garbage", "missing"],
)
def test_forged_webhooks_are_401_and_change_nothing(answered, forge):
    body = event_body("room_finished", f"call-{answered.pk}")
    response = post(body, forge(body) or None)
    assert response.status_code == 401
    assert set(response.json()) == {"error"}
    answered.refresh_from_db()
    assert answered.status == CallStatus.ANSWERED
    assert not answered.events.filter(detail__event="room_finished").exists()


def test_a_tampered_body_is_401(answered):
    body = event_body("participant_joined", f"call-{answered.pk}", identity="callee")
    token = sign(body)
    tampered = body.replace("participant_joined", "room_finished")
    assert post(tampered, token).status_code == 401
    answered.refresh_from_db()
    assert answered.status == CallStatus.ANSWERED


@pytest.mark.parametrize("room", ["call-" + str(uuid.UUID(int=7)), "call-nope", "lobby", ""])
def test_unknown_rooms_are_404(db, room):
    body = event_body("room_finished", room)
    response = post(body, sign(body))
    assert response.status_code == 404
    assert response.json() == {"error": "No call of this server has that room"}
    assert CallEvent.objects.count() == 0


def test_a_room_of_a_simulated_trunk_is_unknown(tenant, voice_agent):
    from calls.models import SipTrunk

    trunk = SipTrunk.objects.create(tenant=tenant, name="Sim", trunk_phone="+14155550100")
    call = trigger(tenant, voice_agent, trunk).call
    body = event_body("room_finished", f"call-{call.pk}")
    assert post(body, sign(body)).status_code == 404


@pytest.mark.parametrize("body", ["not json", "[1, 2]", "\udcff"])
def test_bad_bodies_are_400(db, body):
    response = Client().post(URL, body.encode("utf-8", "surrogateescape"), content_type="application/json")
    assert response.status_code == 400
    assert "error" in response.json()


def test_only_post_is_allowed(db):
    response = Client().get(URL)
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_a_hangup_during_the_answer_still_completes_the_call(tenant, voice_agent, livekit_trunk, livekit_server):
    from calls import dialing
    from calls.dialers import livekit

    call = trigger(tenant, voice_agent, livekit_trunk).call
    dialing.advance_call(call.pk)
    # The callee answers and hangs up at once: the webhook arrives before the dial records the answer.
    body = event_body("participant_left", f"call-{call.pk}", identity="callee")
    assert post(body, sign(body)).status_code == 200
    livekit.dial(call.pk)
    call.refresh_from_db()
    assert call.status == CallStatus.COMPLETED


def test_webhook_body_shape_matches_livekits_json(answered):
    """The receiver also accepts the snake_case JSON some LiveKit versions send."""
    body = json.dumps(
        {
            "event": "room_finished",
            "id": "EV_snake",
            "created_at": int(time.time()),
            "room": {"name": f"call-{answered.pk}"},
        }
    )
    assert post(body, sign(body)).status_code == 200
    answered.refresh_from_db()
    assert answered.status == CallStatus.COMPLETED


def test_without_the_voice_packages_the_hook_says_so(db, monkeypatch):
    from calls.dialers import livekit_client

    monkeypatch.setattr(livekit_client, "installed", lambda: False)
    response = post(event_body("room_finished", "call-x"), "token")
    assert response.status_code == 503
    assert response.json() == {"error": "LiveKit support is not installed on this server"}


def test_an_absurd_timestamp_is_read_as_now(answered):
    body = event_body("room_finished", f"call-{answered.pk}", at=10**15)
    assert post(body, sign(body)).status_code == 200
    answered.refresh_from_db()
    assert answered.status == CallStatus.COMPLETED
    assert answered.end_timestamp.year == answered.start_timestamp.year


def test_an_oversized_body_is_413(db, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = Client().post(URL, "x" * 2000, content_type="application/json")
    assert response.status_code == 413
    assert "error" in response.json()
