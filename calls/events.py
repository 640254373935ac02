"""What dialers report about calls: `record_call_event(call, status, source, ...)`.

The one function every dialer back end reports through: it validates the transition, writes the
CallEvent and, with a terminal status, the callback outbox row in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from calls import admission, hooks, webhooks
from calls.models import TERMINAL_STATUSES, Call, CallEvent, CallStatus
from tenants import metrics

# What a status report may change on a call (saved without rewriting metadata or dialer state).
STATUS_FIELDS = [
    "status",
    "last_updated",
    "stalled_at",
    "provider_call_id",
    "start_timestamp",
    "end_timestamp",
    "duration",
    "call_outcome",
    "transcript_url",
    "recording_url",
    "dialer_due_at",
    "dialer_lease_until",
]
_RANK: dict[str, int] = {CallStatus.INITIATING: 0, CallStatus.RINGING: 1, CallStatus.ANSWERED: 2}


def _rank(status: str) -> int:
    return _RANK.get(status, 3)


def _ignore_reason(current: str, new: str) -> str:
    if current in TERMINAL_STATUSES:
        return f"call is already final ({current})"
    if new == current:
        return "duplicate status"
    if _rank(new) < _rank(current):
        return f"out of order: call is already {current}"
    return ""


def record_call_event(
    call: Call | uuid.UUID | str,
    status: str,
    source: str,
    *,
    occurred_at: datetime | None = None,
    call_outcome: dict[str, Any] | None = None,
    duration: int | None = None,
    transcript_url: str = "",
    recording_url: str = "",
    provider_call_id: str = "",
    detail: dict[str, Any] | None = None,
) -> CallEvent:
    """Record a status report about a call — the one entry point for every dialer back end.

    Statuses only move forward (Initiating → Ringing → Answered → terminal, steps may be skipped); a
    terminal call never changes again. A duplicate, out-of-order or late report is kept as an ignored
    CallEvent. A terminal status writes the callback outbox row in the same transaction and enqueues
    it on commit. Returns the CallEvent (check `.ignored`).
    """
    if status not in CallStatus.values:
        raise ValueError(f"unknown call status {status!r}")
    call_id = call.pk if isinstance(call, Call) else call
    with transaction.atomic():
        locked = Call.objects.select_for_update(of=("self",)).select_related("agent", "sip_trunk").get(pk=call_id)
        now = timezone.now()
        occurred_at = occurred_at or now
        reason = _ignore_reason(locked.status, status)
        if reason:
            return write_event(locked, status, source, occurred_at, detail=detail, ignored_reason=reason)
        locked.status = status
        locked.last_updated = now
        locked.stalled_at = None
        if provider_call_id:
            locked.provider_call_id = provider_call_id
        if status == CallStatus.ANSWERED:
            locked.start_timestamp = occurred_at
        if status in TERMINAL_STATUSES:
            locked.call_outcome = call_outcome
            locked.transcript_url = transcript_url or locked.transcript_url
            locked.recording_url = recording_url or locked.recording_url
            apply_terminal(locked, occurred_at, duration=duration)
            admission.release_channel(locked)  # once: a final call never changes again
        locked.save(update_fields=STATUS_FIELDS)
        event = write_event(locked, status, source, occurred_at, detail=detail)
        if status in TERMINAL_STATUSES:
            notify(locked)
            hooks.call_ended(locked)
    if isinstance(call, Call):
        _refresh_from(call, locked)
    return event


def apply_terminal(call: Call, ended_at: datetime, *, duration: int | None) -> None:
    """Set what a final status fixes on `call` (end, duration, no further dialer step); not saved."""
    call.end_timestamp = ended_at
    if duration is None:
        duration = round((ended_at - call.start_timestamp).total_seconds()) if call.start_timestamp else 0
    call.duration = max(0, int(duration))
    call.dialer_due_at = None
    call.dialer_lease_until = None


def write_event(
    call: Call,
    status: str,
    source: str,
    occurred_at: datetime,
    *,
    detail: dict[str, Any] | None = None,
    ignored_reason: str = "",
) -> CallEvent:
    """Store one CallEvent (an ignored one when `ignored_reason` is given)."""
    event = new_event(call, status, source, occurred_at, detail)
    if ignored_reason:
        event.ignored, event.ignored_reason = True, ignored_reason
    else:
        count_on_commit(status)
    event.save(force_insert=True)
    return event


def new_event(
    call: Call, status: str, source: str, occurred_at: datetime, detail: dict[str, Any] | None = None
) -> CallEvent:
    """An applied CallEvent, unsaved (admission inserts it with its call in one statement)."""
    return CallEvent(
        tenant_id=call.tenant_id,
        call=call,
        status=status,
        source=source[:50],
        occurred_at=occurred_at,
        detail=detail or {},
    )


def count_on_commit(status: str) -> None:
    """Count a status in the metrics once it is committed: a rolled-back transition never happened."""
    transaction.on_commit(lambda: metrics.count_call_status(status))


def notify(call: Call) -> None:
    """Write the callback outbox row of a call that just became final (when it has a callback URL)."""
    if call.callback_url:
        webhooks.create_delivery(call)


def _refresh_from(target: Call, source: Call) -> None:
    for field in Call._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
