"""Placing calls: `trigger_call(tenant, data, idempotency_key=...)` under the trunk's capacity limits.

It validates a POST /integration/v1/calls body (`calls.validation`), admits or rejects the call under
the trunk's limits, and records it. What happens to the call next is in `calls.dialing` (dialer steps)
and `calls.events` (status reports); listing is `calls.listing`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from calls import admission, dispatcher

# Re-exported: the refusal messages are part of the call API (SPEC §9) and callers import them from here.
from calls.admission import MAX_CHANNELS_MESSAGE as MAX_CHANNELS_MESSAGE
from calls.admission import MAX_CPS_MESSAGE as MAX_CPS_MESSAGE
from calls.events import apply_terminal, count_on_commit, notify, write_event
from calls.models import LIVE_STATUSES, ActiveStatus, Call, CallStatus, SipTrunk
from calls.validation import (
    CallRequest,
    CallRequestError,
    PlainCallRequest,
    plain_call_request,
    validate_call_request,
)
from tenants import scoping
from tenants.errors import ErrorCode
from tenants.models import Tenant

IDEMPOTENCY_MISMATCH_MESSAGE = "Idempotency-Key was already used with a different request body"


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
    callback_fields = callback_fields or {}
    try:
        plain = plain_call_request(data)
        if plain is not None:
            admitted = _admit_at_once(tenant, plain, idempotency_key, fingerprint, callback_fields)
            if admitted is not None:
                return admitted
        request = validate_call_request(tenant, data)
        fields = _call_fields(tenant, request, fingerprint, callback_fields)
        return _admit_under_lock(request, idempotency_key, fields, record_rejection=record_rejection)
    except IntegrityError:
        replay = _replay(tenant, idempotency_key, fingerprint) if idempotency_key else None
        if replay is None:
            raise
        return replay


def _replay(tenant: Tenant, key: str, fingerprint: str) -> TriggerResult | None:
    first = scoping.for_tenant(Call, tenant).filter(idempotency_key=key).first()  # unique per tenant
    if first is None:
        return None
    if first.created_at < timezone.now() - timedelta(seconds=settings.CALLS_IDEMPOTENCY_TTL_SECONDS):
        # A key older than 24 h is released, so it may name a new call.
        Call.objects.filter(pk=first.pk, idempotency_key=key).update(idempotency_key=None)
        return None
    if first.request_fingerprint != fingerprint:
        raise CallRequestError(IDEMPOTENCY_MISMATCH_MESSAGE, code=ErrorCode.MISMATCH)
    return TriggerResult(call=first, accepted=True, replayed=True)


def _call_fields(
    tenant: Tenant, request: CallRequest | PlainCallRequest, fingerprint: str, callback_fields: dict[str, Any]
) -> dict[str, Any]:
    """A new call's fields from its request (agent and trunk as loaded objects, or by id)."""
    now = timezone.now()
    if isinstance(request, CallRequest):
        relations: dict[str, Any] = {"agent": request.agent, "sip_trunk": request.sip_trunk}
    else:
        relations = {"agent_id": request.agent_id, "sip_trunk_id": request.sip_trunk_id}
    return {
        "tenant": tenant,
        **relations,
        "phone_number": request.phone_number,
        "metadata": request.metadata,
        "callback_url": request.callback_url,
        "created_at": now,
        "last_updated": now,
        "request_fingerprint": fingerprint,
        "callback_fields": callback_fields,
    }


def _admit_at_once(
    tenant: Tenant, request: PlainCallRequest, key: str | None, fingerprint: str, callback_fields: dict[str, Any]
) -> TriggerResult | None:
    """The accepted call if one statement checked and admitted it (calls.admission.admit_call); None
    when the caller must validate in full and decide under the trunk's lock (a refusal, an invalid
    request, SQLite)."""
    fields = _call_fields(tenant, request, fingerprint, callback_fields)
    now = fields["created_at"]
    call = Call(status=CallStatus.INITIATING, idempotency_key=key, dialer_due_at=now, **fields)
    if not admission.admit_call(call, now):
        return None
    count_on_commit(call.status)
    return TriggerResult(call=call, accepted=True)


def _admit_under_lock(
    request: CallRequest, key: str | None, fields: dict[str, Any], *, record_rejection: bool
) -> TriggerResult:
    """Admit or refuse on the locked trunk row: a refusal (its message and Retry-After), an inactive
    trunk, and databases without the one-statement path."""
    with transaction.atomic():
        # The trunk's row lock serialises admissions per trunk across every web process (PostgreSQL);
        # on SQLite, IMMEDIATE transactions serialise all writers. Time is read after the lock.
        trunk = SipTrunk.objects.select_for_update().filter(pk=request.sip_trunk.pk).first()
        if trunk is None:
            raise CallRequestError("SIP trunk not found", code=ErrorCode.NOT_FOUND)
        if trunk.status != ActiveStatus.ACTIVE:
            raise CallRequestError("SIP trunk is not active")
        now = timezone.now()
        start = admission.start_time(trunk, now)
        fields = {**fields, "sip_trunk": trunk, "created_at": now, "last_updated": now}
        refusal = admission.capacity_refusal(trunk, start)
        if refusal is None:
            call = Call.objects.create(
                status=CallStatus.INITIATING, started_at=start, dialer_due_at=now, idempotency_key=key, **fields
            )
            admission.take_channel(trunk, start)
            write_event(call, call.status, "api", now)
            dispatcher.announce_on_commit(call)
            return TriggerResult(call=call, accepted=True)
        message, retry_after = refusal
        if not record_rejection:
            raise CapacityRefused(message, retry_after)
        call = Call(status=CallStatus.REJECTED_CAPACITY, rejection_reason=message, **fields)
        apply_terminal(call, now, duration=0)
        call.save(force_insert=True)
        write_event(call, call.status, "capacity", now, detail={"retry_after": retry_after})
        notify(call)
        return TriggerResult(call=call, accepted=False, message=message, retry_after=retry_after)


def live_channels(trunk: SipTrunk) -> int:
    """The trunk's live calls, counted from the calls (the admin's and the API's display)."""
    return Call.objects.filter(sip_trunk=trunk, status__in=LIVE_STATUSES).count()
