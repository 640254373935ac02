"""LiveKit's webhooks, `POST /hooks/livekit`: how the room tells Switchboard a call rang and ended.

LiveKit signs each webhook with a JWT in `Authorization` (HS256 with the project's API key and secret,
its `sha256` claim the base64 SHA-256 of the body). The room name `call-<call id>` names the call; its
trunk's `dialer_secrets` verify the token through the SDK's own `WebhookReceiver` (signature, issuer,
expiry and body hash). Then:

- `participant_joined` of the callee → Ringing;
- `participant_left` of the callee, or `room_finished` → Completed with its duration, once the call
  was answered (before that, the dial's own answer decides; the event is kept and ends the call as
  soon as the answer is recorded);
- every other event is recorded too (as an ignored CallEvent carrying the event's name).

A repeated event (same event id) changes nothing. Errors carry codes; the view maps them to statuses.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from calls.dialers import livekit, livekit_client
from calls.events import record_call_event
from calls.models import Call, CallEvent, CallStatus

_ROOM = re.compile(r"^call-([0-9a-fA-F-]{36})$")
ENDING_EVENTS = ("participant_left", "room_finished")


class WebhookRefused(Exception):
    """A webhook that changes nothing; `code` is one of: bad_request, unauthorized, unknown_room, unavailable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def receive(body: bytes, authorization: str) -> CallEvent | None:
    """Verify and apply one LiveKit webhook; returns the CallEvent written (None for a repeat)."""
    if not livekit_client.installed():
        raise WebhookRefused("unavailable", "LiveKit support is not installed on this server")
    try:
        text = body.decode("utf-8")
        payload = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRefused("bad_request", "The body must be a LiveKit webhook event in JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRefused("bad_request", "The body must be a LiveKit webhook event in JSON")
    call = _call_of(payload)
    event = _verified(call, text, authorization)
    return _apply(call, event)


def _room_name(payload: dict) -> str:
    for holder, key in (("room", "name"), ("egressInfo", "roomName"), ("egress_info", "room_name")):
        value = payload.get(holder)
        if isinstance(value, dict) and isinstance(value.get(key), str):
            return value[key]
    return ""


def _call_of(payload: dict) -> Call:
    # Not tenant-scoped: the sender is LiveKit, not a tenant; the call's own trunk then authenticates it.
    match = _ROOM.match(_room_name(payload))
    call = None
    if match:
        try:
            call = Call.objects.select_related("sip_trunk", "agent").filter(pk=uuid.UUID(match.group(1))).first()
        except ValueError:
            call = None
    if call is None or call.sip_trunk.dialer != livekit.LiveKitDialer.name:
        raise WebhookRefused("unknown_room", "No call of this server has that room")
    return call


def _verified(call: Call, text: str, authorization: str) -> Any:
    from livekit.api import TokenVerifier, WebhookReceiver

    token = authorization.strip().removeprefix("Bearer ").strip()
    if not token:
        raise WebhookRefused("unauthorized", "The webhook is not signed (no Authorization header)")
    try:
        key, secret = livekit_client.credentials(call.sip_trunk)
    except livekit_client.LiveKitUnavailable:
        raise WebhookRefused("unauthorized", "The webhook cannot be verified: the trunk has no API secret") from None
    try:
        return WebhookReceiver(TokenVerifier(key, secret)).receive(text, token)
    except Exception:
        # Any failure (signature, issuer, expiry, body hash, malformed event) means "not from LiveKit".
        raise WebhookRefused("unauthorized", "The webhook signature is not valid") from None


def _moment(seconds: int) -> datetime | None:
    """The event's created_at (unix seconds); None (= now) when absent or out of any sane range."""
    try:
        return datetime.fromtimestamp(seconds, UTC) if seconds else None
    except (OverflowError, OSError, ValueError):
        return None


def _apply(call: Call, event: Any) -> CallEvent | None:
    if event.id and call.events.filter(source=livekit.SOURCE, detail__event_id=event.id).exists():
        return None
    occurred_at = _moment(event.created_at)
    identity = event.participant.identity if event.HasField("participant") else ""
    detail: dict[str, Any] = {"event": event.event, "event_id": event.id}
    if identity:
        detail["identity"] = identity
    is_callee = identity == livekit.CALLEE
    status = call.status
    if event.event == "participant_joined" and is_callee:
        status = CallStatus.RINGING
    elif event.event == "room_finished" or (event.event == "participant_left" and is_callee):
        detail["ends_call"] = True
        if call.status == CallStatus.ANSWERED:
            return livekit.complete(call, occurred_at, detail=detail)
    # An event that changes no status is still recorded (ignored: it repeats the current status).
    return record_call_event(call, status, livekit.SOURCE, occurred_at=occurred_at, detail=detail)
