"""Placing calls: `trigger_call(tenant, data, idempotency_key=...)` under the trunk's capacity limits.

It validates a POST /integration/v1/calls body (`calls.validation`), admits or rejects the call under
the trunk's limits, and records it. What happens to the call next is in `calls.dialing` (dialer steps)
and `calls.events` (status reports); listing is `calls.listing`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from calls import queue
from calls.dialers import get_dialer
from calls.events import apply_terminal, notify, write_event
from calls.models import LIVE_STATUSES, ActiveStatus, Call, CallStatus, SipTrunk
from calls.validation import CallRequest, CallRequestError, validate_call_request
from rules.models import Channel, Conversation
from rules.services import start_conversation
from tenants import scoping
from tenants.errors import ErrorCode
from tenants.models import Tenant

MAX_CHANNELS_MESSAGE = "Trunk concurrency (max_channels) exhausted"
MAX_CPS_MESSAGE = "Trunk call rate (max_cps) exceeded"
IDEMPOTENCY_MISMATCH_MESSAGE = "Idempotency-Key was already used with a different request body"
MAX_RETRY_AFTER_SECONDS = 3600


class CapacityRefused(Exception):
    """The trunk refused a call its caller asked not to record (`record_rejection=False`)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass
class TriggerResult:
    call: Call
    accepted: bool
    replayed: bool = False
    message: str = ""
    retry_after: int | None = None


def request_fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def trigger_call(
    tenant: Tenant,
    data: Any,
    *,
    idempotency_key: str | None = None,
    callback_fields: dict[str, Any] | None = None,
    record_rejection: bool = True,
) -> TriggerResult:
    """Validate and place a call for `tenant`; a trunk at capacity gives a recorded rejected call.

    With an `idempotency_key`, a repeat of the same body within 24 h returns the first accepted call
    (`replayed=True`); the same key with another body raises CallRequestError (code `mismatch`). A unique
    constraint on (tenant, key) settles concurrent repeats: the loser reads the winner's call.
    `callback_fields` are extra top-level fields of the call's callback (a campaign's `campaign_id`
    and `row`). `record_rejection=False` is for a caller that waits and tries again itself (a
    campaign pacing a trunk): a capacity refusal then raises CapacityRefused, recording no rejected
    call and sending no callback.
    """
    fingerprint = request_fingerprint(data)
    if idempotency_key is not None:
        if not idempotency_key or len(idempotency_key) > 255:
            raise CallRequestError("Idempotency-Key must be between 1 and 255 characters")
        replay = _replay(tenant, idempotency_key, fingerprint)
        if replay is not None:
            return replay
    request = validate_call_request(tenant, data)
    try:
        return _admit(
            tenant,
            request,
            idempotency_key,
            fingerprint,
            callback_fields=callback_fields or {},
            record_rejection=record_rejection,
        )
    except IntegrityError:
        replay = _replay(tenant, idempotency_key, fingerprint) if idempotency_key else None
        if replay is None:
            raise
        return replay


def _replay(tenant: Tenant, key: str, fingerprint: str) -> TriggerResult | None:
    ttl = timedelta(seconds=settings.CALLS_IDEMPOTENCY_TTL_SECONDS)
    # A key older than 24 h is released, so it may name a new call.
    scoping.for_tenant(Call, tenant).filter(idempotency_key=key, created_at__lt=timezone.now() - ttl).update(
        idempotency_key=None
    )
    first = scoping.for_tenant(Call, tenant).filter(idempotency_key=key).first()
    if first is None:
        return None
    if first.request_fingerprint != fingerprint:
        raise CallRequestError(IDEMPOTENCY_MISMATCH_MESSAGE, code=ErrorCode.MISMATCH)
    return TriggerResult(call=first, accepted=True, replayed=True)


def _admit(
    tenant: Tenant,
    request: CallRequest,
    key: str | None,
    fingerprint: str,
    *,
    callback_fields: dict[str, Any],
    record_rejection: bool,
) -> TriggerResult:
    with transaction.atomic():
        # The trunk's row lock serialises admissions per trunk across every web process (PostgreSQL);
        # on SQLite, IMMEDIATE transactions serialise all writers. Time is read after the lock, so the
        # order of start times is the order of admissions.
        trunk = SipTrunk.objects.select_for_update().get(pk=request.sip_trunk.pk)
        if trunk.status != ActiveStatus.ACTIVE:
            raise CallRequestError("SIP trunk is not active")
        now = timezone.now()
        fields = {
            "tenant": tenant,
            "agent": request.agent,
            "sip_trunk": trunk,
            "phone_number": request.phone_number,
            "metadata": request.metadata,
            "callback_url": request.callback_url,
            "created_at": now,
            "last_updated": now,
            "request_fingerprint": fingerprint,
            "callback_fields": callback_fields,
        }
        refusal = capacity_refusal(trunk, now)
        if refusal is not None:
            message, retry_after = refusal
            if not record_rejection:
                raise CapacityRefused(message, retry_after)
            call = Call(status=CallStatus.REJECTED_CAPACITY, rejection_reason=message, **fields)
            apply_terminal(call, now, duration=0)
            call.save(force_insert=True)
            write_event(call, call.status, "capacity", now, detail={"retry_after": retry_after})
            notify(call)
            return TriggerResult(call=call, accepted=False, message=message, retry_after=retry_after)
        call = Call.objects.create(
            status=CallStatus.INITIATING,
            started_at=now,
            dialer_due_at=now,
            idempotency_key=key,
            conversation=_voice_conversation(tenant, request),
            **fields,
        )
        write_event(call, call.status, "api", now)
        queue.enqueue_on_commit("calls.advance_call", call.pk)
        return TriggerResult(call=call, accepted=True)


def _voice_conversation(tenant: Tenant, request: CallRequest) -> Conversation:
    """The accepted call's conversation: its session variables are the call's metadata (`{{customer_name}}`)."""
    return start_conversation(
        tenant, channel=Channel.VOICE, variables=request.metadata, visitor_id=request.phone_number
    )


def capacity_refusal(trunk: SipTrunk, now: datetime) -> tuple[str, int] | None:
    """Why `trunk` cannot start a call at `now` — (message, Retry-After seconds) — or None.

    Run under the trunk's lock. Live calls are those not yet terminal; a start counts for max_cps
    during the one second after it (a sliding window, so no one-second window ever holds more).
    """
    window_start = now - timedelta(seconds=1)
    is_live, is_recent = Q(status__in=LIVE_STATUSES), Q(started_at__gt=window_start)
    counts = Call.objects.filter(is_live | is_recent, sip_trunk=trunk).aggregate(
        live=Count("pk", filter=is_live), recent=Count("pk", filter=is_recent)
    )
    if counts["live"] >= trunk.max_channels:
        oldest = Call.objects.filter(is_live, sip_trunk=trunk).aggregate(oldest=Min("started_at"))["oldest"] or now
        expected = timedelta(seconds=get_dialer(trunk.dialer).expected_duration(trunk.dialer_config))
        return MAX_CHANNELS_MESSAGE, _whole_seconds(oldest + expected - now)
    if counts["recent"] >= trunk.max_cps:
        oldest = Call.objects.filter(is_recent, sip_trunk=trunk).aggregate(oldest=Min("started_at"))["oldest"]
        return MAX_CPS_MESSAGE, _whole_seconds(oldest + timedelta(seconds=1) - now)
    return None


def _whole_seconds(delta: timedelta) -> int:
    return max(1, min(MAX_RETRY_AFTER_SECONDS, math.ceil(delta.total_seconds())))


def live_channels(trunk: SipTrunk) -> int:
    return Call.objects.filter(sip_trunk=trunk, status__in=LIVE_STATUSES).count()
