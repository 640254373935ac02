"""The public shapes of calls, agents and trunks (SPEC §9, §10), shared by the API and the callbacks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from calls.models import Agent, Call, CallStatus, SipTrunk


def iso_ms(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds: `2026-06-14T10:32:05.000Z`."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def is_stalled(call: Call, now: datetime | None = None) -> bool:
    """Answered, but not updated for longer than CALLS_STALLED_AFTER_SECONDS (10 minutes)."""
    now = now or timezone.now()
    limit = timedelta(seconds=settings.CALLS_STALLED_AFTER_SECONDS)
    return call.status == CallStatus.ANSWERED and now - call.last_updated > limit


def poll_url(call: Call) -> str:
    return f"/integration/v1/calls/{call.pk}/status"


def transcript_path(call: Call) -> str:
    return f"/integration/v1/calls/{call.pk}/transcript"


def transcript_url(call: Call) -> str:
    """The absolute address of the call's transcript (PUBLIC_BASE_URL + the transcript route)."""
    return settings.PUBLIC_BASE_URL + transcript_path(call)


TRANSCRIPT_ROLES = {"assistant": "agent", "visitor": "caller", "tool": "tool"}


def transcript(call: Call, messages) -> dict:
    """`{"call_id", "messages": [{"role": "agent" | "caller" | "tool", "text", "at"}]}` (SPEC §14)."""
    listed = [
        {"role": TRANSCRIPT_ROLES[m.role], "text": m.text, "at": iso_ms(m.created_at)}
        for m in messages
        if m.role in TRANSCRIPT_ROLES
    ]
    return {"call_id": str(call.pk), "messages": listed}


def call_status(call: Call, now: datetime | None = None) -> dict:
    return {
        "id": str(call.pk),
        "phone_number": call.phone_number,
        "call_status": call.status,
        "is_terminal": call.is_terminal,
        "stalled": is_stalled(call, now),
        "call_outcome": call.call_outcome,
        "duration": call.duration,
        "start_timestamp": iso_ms(call.start_timestamp),
        "end_timestamp": iso_ms(call.end_timestamp),
        "transcript_url": call.transcript_url or None,
        "recording_url": call.recording_url or None,
        "last_updated": iso_ms(call.last_updated),
    }


def call_list_item(call: Call, now: datetime | None = None) -> dict:
    return {
        **call_status(call, now),
        "agent_id": str(call.agent_id),
        "sip_trunk_id": str(call.sip_trunk_id),
        "created_at": iso_ms(call.created_at),
    }


def triggered(call: Call) -> dict:
    """The 201 body of POST /integration/v1/calls (replayed as is for an Idempotency-Key retry)."""
    return {"call_id": str(call.pk), "status": "triggered", "poll_url": poll_url(call)}


def agent(obj: Agent) -> dict:
    schema = obj.input_schema or {}
    return {
        "id": str(obj.pk),
        "name": obj.name,
        "agent_code": obj.agent_code,
        "status": obj.status,
        "input_schema": {
            "fields": list(schema.get("fields") or []),
            "sample_context": schema.get("sample_context") or {},
        },
    }


def sip_trunk(obj: SipTrunk) -> dict:
    return {
        "id": str(obj.pk),
        "name": obj.name,
        "trunk_phone": obj.trunk_phone,
        "max_cps": obj.max_cps,
        "max_channels": obj.max_channels,
        "status": obj.status,
    }
