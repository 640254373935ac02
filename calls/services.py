"""Call services: trigger a call under the trunk's capacity limits, and record what dialers report.

Views, admin actions and Celery tasks are thin adapters over these functions:
- `trigger_call(tenant, data, idempotency_key=...)` — validate a POST /integration/v1/calls body, admit
  or reject the call under the trunk's limits, and record it;
- `record_call_event(call, status, source, ...)` — the one function every dialer back end reports
  through: validates the transition, writes the CallEvent and, with a terminal status, the callback
  outbox row in the same transaction;
- `advance_call(call_id)` — run the call's due dialer step (place it, or the next scheduled step);
- `schedule_dialer_step(call, due_at, state)` — what a back end calls to be woken up later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Min, Q, QuerySet, Value
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from calls import dnc, hooks, leases
from calls.dialers import get_dialer
from calls.models import (
    LIVE_STATUSES,
    TERMINAL_STATUSES,
    ActiveStatus,
    Agent,
    Call,
    CallEvent,
    CallStatus,
    SipTrunk,
)
from rules.models import Channel
from rules.services import start_conversation
from tenants import scoping
from tenants.models import Tenant

logger = logging.getLogger(__name__)

CALL_FIELDS = ("phone_number", "agent_id", "sip_trunk_id", "metadata", "callback_url")
MAX_CHANNELS_MESSAGE = "Trunk concurrency (max_channels) exhausted"
MAX_CPS_MESSAGE = "Trunk call rate (max_cps) exceeded"
IDEMPOTENCY_MISMATCH_MESSAGE = "Idempotency-Key was already used with a different request body"
MAX_RETRY_AFTER_SECONDS = 3600
_E164_CHARS = re.compile(r"^\+[0-9 ().\-]+$")


class CallRequestError(Exception):
    """A POST /calls request that cannot be accepted: `status` and the exact public `message`."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass
class TriggerResult:
    call: Call | None  # None only for a refusal that was not recorded (record_rejection=False)
    accepted: bool
    replayed: bool = False
    message: str = ""
    retry_after: int | None = None


# --- validation ------------------------------------------------------------------------------------


def normalise_e164(value: Any) -> str | None:
    """The number in E.164 (`+14155552671`) if `value` is a valid international number, else None.

    Only numbers written with their `+` country code are accepted; spaces, dots, dashes and brackets
    between digits are tolerated and dropped.
    """
    if not isinstance(value, str) or not _E164_CHARS.match(value.strip()):
        return None
    try:
        number = phonenumbers.parse(value.strip(), None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _callback_url(value: Any) -> str:
    from integrations import http

    message = "callback_url must be a valid http or https URL"
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > 2000:
        raise CallRequestError(message)
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CallRequestError(message)
    try:
        http.check_url(value.strip())
    except http.DestinationNotAllowed as exc:
        raise CallRequestError(f"callback_url is not allowed: {exc}") from None
    except http.OutboundError:
        raise CallRequestError(message) from None
    return value.strip()


@dataclass
class CallRequest:
    phone_number: str
    agent: Agent
    sip_trunk: SipTrunk
    metadata: dict
    callback_url: str


def validate_call_request(tenant: Tenant, data: Any) -> CallRequest:
    """Check a POST /calls body in the order of SPEC §9; raise CallRequestError with the exact message."""
    if not isinstance(data, dict):
        raise CallRequestError("Request body must be a JSON object")
    unknown = sorted(set(data) - set(CALL_FIELDS))
    if unknown:
        raise CallRequestError(f"Unknown field(s): {', '.join(unknown)}")
    if data.get("phone_number") in (None, ""):
        raise CallRequestError("phone_number is required")
    phone_number = normalise_e164(data["phone_number"])
    if phone_number is None:
        raise CallRequestError("phone_number must be in E.164 format")
    agent = _lookup(tenant, Agent, data.get("agent_id"), "agent_id", "Agent not found")
    trunk = _lookup(tenant, SipTrunk, data.get("sip_trunk_id"), "sip_trunk_id", "SIP trunk not found")
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise CallRequestError("metadata must be a JSON object")
    missing = [key for key in agent.required_fields if key not in metadata]
    if missing:
        raise CallRequestError(f"metadata missing required keys: {', '.join(missing)}")
    if agent.status != ActiveStatus.ACTIVE:
        raise CallRequestError("Agent is not active")
    if trunk.status != ActiveStatus.ACTIVE:
        raise CallRequestError("SIP trunk is not active")
    callback_url = _callback_url(data.get("callback_url"))
    if dnc.is_listed(tenant, phone_number):
        raise CallRequestError(dnc.LISTED_MESSAGE, code="do_not_call")
    return CallRequest(phone_number, agent, trunk, metadata, callback_url)


def _lookup(tenant: Tenant, model, value: Any, field: str, not_found: str):
    if value in (None, ""):
        raise CallRequestError(f"{field} is required")
    if not isinstance(value, str):
        raise CallRequestError(not_found, status=404)
    try:
        return scoping.get_for_tenant_or_404(model, tenant, pk=value)
    except Http404:
        raise CallRequestError(not_found, status=404) from None


# --- triggering under capacity ---------------------------------------------------------------------


def request_fingerprint(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def trigger_call(
    tenant: Tenant,
    data: Any,
    *,
    idempotency_key: str | None = None,
    callback_fields: dict | None = None,
    record_rejection: bool = True,
) -> TriggerResult:
    """Validate and place a call for `tenant`; a trunk at capacity gives a recorded rejected call.

    With an `idempotency_key`, a repeat of the same body within 24 h returns the first accepted call
    (`replayed=True`); the same key with another body raises CallRequestError (422). A unique
    constraint on (tenant, key) settles concurrent repeats: the loser reads the winner's call.
    `callback_fields` are extra top-level fields of the call's callback (a campaign's `campaign_id`
    and `row`). `record_rejection=False` is for a caller that waits and tries again itself (a
    campaign pacing a trunk): a capacity refusal then records no rejected call and sends no callback.
    """
    fingerprint = request_fingerprint(data)
    if idempotency_key is not None:
        if not idempotency_key or len(idempotency_key) > 255:
            raise CallRequestError("Idempotency-Key must be between 1 and 255 characters")
        replay = _replay(tenant, idempotency_key, fingerprint)
        if replay is not None:
            return replay
    request = validate_call_request(tenant, data)
    extra = {"callback_fields": callback_fields or {}, "record_rejection": record_rejection}
    try:
        return _admit(tenant, request, idempotency_key, fingerprint, **extra)
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
        raise CallRequestError(IDEMPOTENCY_MISMATCH_MESSAGE, status=422)
    return TriggerResult(call=first, accepted=True, replayed=True)


def _admit(
    tenant: Tenant,
    request: CallRequest,
    key: str | None,
    fingerprint: str,
    *,
    callback_fields: dict,
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
                return TriggerResult(call=None, accepted=False, message=message, retry_after=retry_after)
            call = Call(status=CallStatus.REJECTED_CAPACITY, rejection_reason=message, **fields)
            _apply_terminal(call, now, duration=0)
            call.save(force_insert=True)
            _write_event(call, call.status, "capacity", now, detail={"retry_after": retry_after})
            _notify(call)
            return TriggerResult(call=call, accepted=False, message=message, retry_after=retry_after)
        call = Call.objects.create(
            status=CallStatus.INITIATING,
            started_at=now,
            dialer_due_at=now,
            idempotency_key=key,
            conversation=_voice_conversation(tenant, request),
            **fields,
        )
        _write_event(call, call.status, "api", now)
        enqueue_on_commit("calls.advance_call", call.pk)
        return TriggerResult(call=call, accepted=True)


def _voice_conversation(tenant: Tenant, request: CallRequest):
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


# --- listing --------------------------------------------------------------------------------------


def _parse(parser, value: str):
    try:
        return parser(value)
    except ValueError:  # well formed but impossible, e.g. month 13
        return None


def _moment(param: str, value: str, *, end_of_day: bool) -> datetime:
    # A bare date means the whole UTC day (parse_datetime alone would read it as midnight).
    day = _parse(parse_date, value)
    if day is not None:
        moment = datetime.combine(day, time.max if end_of_day else time.min)
    else:
        moment = _parse(parse_datetime, value)
        if moment is None:
            raise CallRequestError(f"{param} must be an ISO 8601 date or date-time")
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def _uuid(param: str, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CallRequestError(f"{param} must be a UUID") from None


def filter_calls(tenant: Tenant, params) -> QuerySet[Call]:
    """The tenant's calls, newest first, filtered by GET /calls parameters (a QueryDict-like).

    `status` (repeatable or comma-separated), `agent` (id or agent_code), `agent_id`, `sip_trunk_id`,
    `created_after` / `created_before` (date or date-time, inclusive), `date` (one UTC day).
    """
    calls = scoping.for_tenant(Call, tenant).order_by("-created_at", "pk")
    statuses = [s for value in params.getlist("status") for s in value.split(",") if s]
    if any(s not in CallStatus.values for s in statuses):
        raise CallRequestError(f"status must be one of: {', '.join(CallStatus.values)}")
    if statuses:
        calls = calls.filter(status__in=statuses)
    if params.get("agent"):
        try:
            calls = calls.filter(agent_id=uuid.UUID(params["agent"]))
        except ValueError:
            calls = calls.filter(agent__agent_code=params["agent"])
    for param, field in (("agent_id", "agent_id"), ("sip_trunk_id", "sip_trunk_id")):
        if params.get(param):
            calls = calls.filter(**{field: _uuid(param, params[param])})
    bounds = [("created_after", "gte", False), ("created_before", "lte", True)]
    if params.get("date"):
        if _parse(parse_date, params["date"]) is None:
            raise CallRequestError("date must be an ISO 8601 date (YYYY-MM-DD)")
        bounds += [("date", "gte", False), ("date", "lte", True)]
    for param, lookup, end in bounds:
        if params.get(param):
            calls = calls.filter(**{f"created_at__{lookup}": _moment(param, params[param], end_of_day=end)})
    return calls


# --- status events ---------------------------------------------------------------------------------

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
_RANK = {CallStatus.INITIATING: 0, CallStatus.RINGING: 1, CallStatus.ANSWERED: 2}


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
    call_outcome: dict | None = None,
    duration: int | None = None,
    transcript_url: str = "",
    recording_url: str = "",
    provider_call_id: str = "",
    detail: dict | None = None,
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
            return _write_event(locked, status, source, occurred_at, detail=detail, ignored_reason=reason)
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
            _apply_terminal(locked, occurred_at, duration=duration)
        locked.save(update_fields=STATUS_FIELDS)
        event = _write_event(locked, status, source, occurred_at, detail=detail)
        if status in TERMINAL_STATUSES:
            _notify(locked)
            hooks.call_ended(locked)
    if isinstance(call, Call):
        _refresh_from(call, locked)
    return event


def _apply_terminal(call: Call, ended_at: datetime, *, duration: int | None) -> None:
    call.end_timestamp = ended_at
    if duration is None:
        duration = round((ended_at - call.start_timestamp).total_seconds()) if call.start_timestamp else 0
    call.duration = max(0, int(duration))
    call.dialer_due_at = None
    call.dialer_lease_until = None


def _write_event(
    call: Call, status: str, source: str, occurred_at: datetime, *, detail: dict | None = None, ignored_reason: str = ""
) -> CallEvent:
    return CallEvent.objects.create(
        tenant_id=call.tenant_id,
        call=call,
        status=status,
        source=source[:50],
        occurred_at=occurred_at,
        ignored=bool(ignored_reason),
        ignored_reason=ignored_reason,
        detail=detail or {},
    )


def _notify(call: Call) -> None:
    from calls import webhooks

    if call.callback_url:
        webhooks.create_delivery(call)


def _refresh_from(target: Call, source: Call) -> None:
    for field in Call._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))


# --- dialer steps ----------------------------------------------------------------------------------


def schedule_dialer_step(call: Call, due_at: datetime | None, state: dict) -> None:
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
            enqueue_on_commit("calls.advance_call", call.pk, countdown=delay)


def advance_call(call_id: uuid.UUID | str) -> None:
    """Run the call's due dialer step: place it if not placed yet, else the back end's next step."""
    lease_seconds = settings.CALLS_LEASE_MARGIN_SECONDS + 30
    call = leases.claim(
        Call.objects.filter(status__in=LIVE_STATUSES).select_related("sip_trunk", "agent"),
        call_id,
        due_field="dialer_due_at",
        lease_field="dialer_lease_until",
        claims_field="dialer_claims",
        lease_seconds=lease_seconds,
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
        enqueue("calls.advance_call", call_id)
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


# --- the broker ------------------------------------------------------------------------------------


def enqueue(task_name: str, *args: Any, countdown: float | None = None) -> bool:
    """Send the registered task `task_name` (any app's: looked up by name, so nothing is imported)
    now; a broker failure is logged, not raised (the sweeps pick the work up)."""
    from celery import current_app

    from calls import tasks  # noqa: F401  (registers this app's tasks even where autodiscovery has not run)

    try:
        current_app.tasks[task_name].apply_async(args=[str(a) for a in args], countdown=countdown or None)
    except Exception:
        logger.warning("could not enqueue %s; the sweep will retry", task_name, exc_info=True)
        return False
    return True


def enqueue_on_commit(task_name: str, *args: Any, countdown: float | None = None) -> None:
    transaction.on_commit(lambda: enqueue(task_name, *args, countdown=countdown))
