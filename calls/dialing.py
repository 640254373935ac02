"""Running dialer back ends: a call's due step, and the sweeps that keep calls moving.

- `advance_call(call_id)` — run the call's due dialer step (place it, or the next scheduled step); the
  first step gives the call its voice conversation (`give_conversation`);
- `schedule_dialer_step(call, due_at, state)` — what a back end calls to be woken up later;
- `sweep_dialer()` re-enqueues due steps whose message was lost; `sweep_stalled()` flags answered
  calls nothing has reported on for a while.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from calls import leases
from calls.dialers import get_dialer
from calls.dispatcher import TASK as ADVANCE_TASK  # the one name of the dialer-step task
from calls.events import record_call_event
from calls.models import LIVE_STATUSES, Call, CallStatus
from rules.models import Channel
from rules.services import start_conversation
from tenants import queue

logger = logging.getLogger(__name__)


def schedule_dialer_step(call: Call, due_at: datetime | None, state: dict[str, Any]) -> None:
    """Keep the back end's `state` and wake it (`advance(call)`) at `due_at` (None: nothing more to do).

    Also ends the current step (releases its lease, marks the call placed). A step due within
    CALLS_MAX_COUNTDOWN_SECONDS is sent to the broker with a countdown; any other (or a lost message)
    is picked up by the dialer sweep.
    """
    now = timezone.now()
    Call.objects.filter(pk=call.pk).update(
        dialer_state=state,
        dialer_due_at=due_at,
        dialer_lease_until=None,
        dialer_claims=0,
        placed_at=Coalesce(F("placed_at"), Value(now)),
    )
    call.dialer_state, call.dialer_due_at, call.dialer_lease_until, call.dialer_claims = state, due_at, None, 0
    call.placed_at = call.placed_at or now
    if due_at is not None:
        delay = max(0.0, (due_at - now).total_seconds())
        if delay <= settings.CALLS_MAX_COUNTDOWN_SECONDS:
            queue.enqueue_on_commit(ADVANCE_TASK, call.pk, countdown=delay)


def advance_call(call_id: uuid.UUID | str) -> None:
    """Run the call's due dialer step: place it if not placed yet, else the back end's next step."""
    lease_seconds = settings.CALLS_LEASE_MARGIN_SECONDS + 30
    call = leases.claim(
        Call.objects.filter(status__in=LIVE_STATUSES).select_related("sip_trunk", "agent", "tenant"),
        call_id,
        due_field="dialer_due_at",
        lease_field="dialer_lease_until",
        claims_field="dialer_claims",
        lease_seconds=lease_seconds,
        on_claim=give_conversation,
        also_saves=("conversation",),
    )
    if call is None:
        return
    first_step = call.placed_at is None
    failed = CallStatus.TRIGGER_FAILED if first_step else CallStatus.SIP_CALL_FAILED
    if leases.redeliveries_exhausted(call.dialer_claims):
        reason = f"the dialer step was interrupted {call.dialer_claims - 1} times"
        record_call_event(call, failed, "system", detail={"reason": reason})
        return
    try:
        dialer = get_dialer(call.sip_trunk.dialer)
        if first_step:
            dialer.place(call)
        else:
            dialer.advance(call)
    except Exception as exc:
        logger.exception("dialer step failed", extra={"call_id": str(call.pk)})
        record_call_event(call, failed, "system", detail={"error": str(exc)[:500]})
        return
    if call.dialer_lease_until is not None:  # the back end scheduled nothing: end the step here
        schedule_dialer_step(call, None, call.dialer_state)


def give_conversation(call: Call) -> bool:
    """Give a claimed call its voice conversation if it has none yet (its first dialer step).

    Made here rather than at admission, so admitting a call writes only the call: the conversation's
    session variables are the call's metadata (`{{customer_name}}`), its visitor the number called.
    Runs in the claim's transaction, so a call is never placed without one.
    """
    if call.conversation_id is None:
        call.conversation = start_conversation(
            call.tenant, channel=Channel.VOICE, variables=call.metadata, visitor_id=call.phone_number
        )
    return True


# --- sweeps ----------------------------------------------------------------------------------------


def sweep_dialer(limit: int = 500) -> int:
    """Re-enqueue dialer steps that are due (a few seconds past) and not leased: lost messages."""
    now = timezone.now()
    grace = now - timedelta(seconds=min(2.0, settings.CALLS_REENQUEUE_AFTER_SECONDS))
    due = (
        Call.objects.filter(status__in=LIVE_STATUSES, dialer_due_at__lte=grace)
        .exclude(dialer_lease_until__gt=now)
        .values_list("pk", flat=True)[:limit]
    )
    ids = list(due)
    for call_id in ids:
        queue.enqueue(ADVANCE_TASK, call_id)
    return len(ids)


def sweep_stalled(limit: int = 1000) -> int:
    """Flag answered calls not updated for over 10 minutes (shown and filterable in the admin)."""
    cutoff = timezone.now() - timedelta(seconds=settings.CALLS_STALLED_AFTER_SECONDS)
    ids = list(
        Call.objects.filter(status=CallStatus.ANSWERED, last_updated__lt=cutoff, stalled_at__isnull=True).values_list(
            "pk", flat=True
        )[:limit]
    )
    return Call.objects.filter(pk__in=ids, status=CallStatus.ANSWERED).update(stalled_at=timezone.now())
