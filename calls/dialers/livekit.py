"""The `livekit` dialer: real phone calls through LiveKit SIP and Switchboard's voice worker (SPEC §16).

Trunk settings: `dialer_config` `{"url", "sip_trunk_id", "ringing_timeout", "max_call_duration"}` and
the write-only, encrypted `dialer_secrets` `{"api_key", "api_secret"}` (literal or `env:`/`file:`).

A call moves through three steps, each recorded in `call.dialer_state["phase"]`:
1. `place()` runs in `calls.advance_call` on the default queue and only hands the call to the
   `calls.livekit_dial` task on the dial queue (`CALLS_DIAL_QUEUE`): a ringing phone holds a worker
   of that queue for up to `ringing_timeout`, never one that delivers webhooks or other work.
2. `dial()` claims the call (phase `queued` → `dialing`, a compare-and-set in the database, so a
   redelivered message never rings a phone twice), dispatches the agent `agent_code` into room
   `call-<id>`, then creates the SIP participant and waits until it answers. The outcome is
   reported through `record_call_event`: Answered; SIP 486/600/603 → Decline; no answer, 480, 408
   and other SIP failures → SIP Call Failed; anything refused before dialing → Trigger Failed.
3. The end comes from the room (webhooks, `calls.dialers.livekit_webhooks`) or from the voice
   worker, both through `complete()`. A guard step at `max_call_duration` ends a call whose end was
   never reported (LiveKit has hung up by then), and one after the dial timeout ends a call whose
   dialing worker was lost.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from calls import runtime
from calls.dialers import Dialer, DialerConfigError, livekit_client
from calls.dialing import schedule_dialer_step
from calls.events import record_call_event
from calls.models import Call, CallStatus
from integrations import http
from integrations.auth import secret_refs
from tenants.queue import enqueue_on_commit

logger = logging.getLogger(__name__)

SOURCE = "livekit"
CALLEE = "callee"
CONFIG_KEYS = ("url", "sip_trunk_id", "ringing_timeout", "max_call_duration")
SECRET_KEYS = ("api_key", "api_secret")
DEFAULTS = {"ringing_timeout": 30, "max_call_duration": 1800}
BOUNDS = {"ringing_timeout": (1, 120), "max_call_duration": (10, 86_400)}
DECLINE_SIP_CODES = frozenset({486, 600, 603})
# Server errors without a SIP status that mean the request was refused before any phone rang.
REFUSED_CODES = frozenset(
    {"unauthenticated", "permission_denied", "not_found", "invalid_argument", "malformed", "bad_route"}
    | {"failed_precondition", "unimplemented", "already_exists", "out_of_range"}
)
_TRUNK_ID = re.compile(r"^ST_[A-Za-z0-9]{1,64}$")
# Seconds of slack after a step's own deadline before the guard step acts.
GUARD_MARGIN_SECONDS = 30


def room_name(call: Call) -> str:
    return f"call-{call.pk}"


def settings_of(config: dict | None) -> dict:
    return {**DEFAULTS, **(config or {})}


# --- settings --------------------------------------------------------------------------------------


def _whole_seconds(name: str, value: Any) -> int:
    low, high = BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise DialerConfigError(f"{name} must be a whole number of seconds")
    if not low <= value <= high:
        raise DialerConfigError(f"{name} must be between {low} and {high} seconds")
    return int(value)


def _url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DialerConfigError("url is required: the LiveKit server, e.g. https://<project>.livekit.cloud")
    value = value.strip()
    if len(value) > 500:
        raise DialerConfigError("url must be at most 500 characters")
    try:
        http.check_url(livekit_client.http_url(value))
    except http.OutboundError as exc:
        raise DialerConfigError(f"url: {exc}") from None
    return value.rstrip("/")


def _secret(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DialerConfigError(f"dialer_secrets.{name} is required")
    if len(value) > 500 or any(ch.isspace() for ch in value):
        raise DialerConfigError(f"dialer_secrets.{name} must be one word of at most 500 characters")
    scheme, sep, _ = value.partition(":")
    if sep and scheme in ("env", "file") and secret_refs.reference_scheme(value) is None:
        raise DialerConfigError(f"dialer_secrets.{name} references nothing after {scheme}:")
    # The operator decides which variables and files tenants may reference (never the app's own).
    problem = secret_refs.reference_problem(value)
    if problem:
        raise DialerConfigError(f"dialer_secrets.{name}: {problem}")
    return value


class LiveKitDialer(Dialer):
    name = "livekit"

    def validate_config(self, config: Any) -> dict:
        if not livekit_client.installed():
            raise DialerConfigError(livekit_client.INSTALL_HINT)
        if not isinstance(config, dict):
            raise DialerConfigError("dialer_config must be a JSON object with url and sip_trunk_id")
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise DialerConfigError(f"unknown setting(s) for the livekit dialer: {', '.join(unknown)}")
        trunk_id = config.get("sip_trunk_id")
        if not isinstance(trunk_id, str) or not _TRUNK_ID.match(trunk_id.strip()):
            raise DialerConfigError("sip_trunk_id must be the LiveKit outbound trunk's id, e.g. ST_a1b2c3")
        clean: dict[str, Any] = {"url": _url(config.get("url")), "sip_trunk_id": trunk_id.strip()}
        for name in ("ringing_timeout", "max_call_duration"):
            clean[name] = _whole_seconds(name, config.get(name, DEFAULTS[name]))
        return clean

    def validate_secrets(self, secrets: Any, config: dict) -> dict:
        if not isinstance(secrets, dict):
            raise DialerConfigError("dialer_secrets must be a JSON object with api_key and api_secret")
        unknown = sorted(set(secrets) - set(SECRET_KEYS))
        if unknown:
            raise DialerConfigError(f"unknown secret(s) for the livekit dialer: {', '.join(unknown)}")
        return {name: _secret(name, secrets.get(name)) for name in SECRET_KEYS}

    def expected_duration(self, config: dict) -> float:
        merged = settings_of(config)
        return min(float(settings.CALLS_EXPECTED_CALL_SECONDS), float(merged["max_call_duration"]))

    def place(self, call: Call) -> None:
        """Hand the call to the dial queue; the guard step fails it if no dial worker ever takes it."""
        now = timezone.now()
        state = {"phase": "queued", "queued_at": now.isoformat()}
        schedule_dialer_step(call, now + timedelta(seconds=settings.CALLS_DIAL_QUEUE_TIMEOUT_SECONDS), state)
        enqueue_on_commit("calls.livekit_dial", call.pk)

    def advance(self, call: Call) -> None:
        """A guard step is due: the dial was never taken, its worker was lost, or the end never came."""
        phase = (call.dialer_state or {}).get("phase")
        if phase == "queued" and call.status == CallStatus.INITIATING:
            reason = "no dialing worker took the call (is a worker consuming the dial queue?)"
            record_call_event(call, CallStatus.TRIGGER_FAILED, SOURCE, detail={"reason": reason})
        elif phase == "dialing" and call.status in (CallStatus.INITIATING, CallStatus.RINGING):
            reason = "the dialing worker was lost before LiveKit answered"
            record_call_event(call, CallStatus.SIP_CALL_FAILED, SOURCE, detail={"reason": reason})
        elif call.status == CallStatus.ANSWERED:
            limit = settings_of(call.sip_trunk.dialer_config)["max_call_duration"]
            reason = "the room's end was never reported; LiveKit ends a call at max_call_duration"
            complete(call, None, detail={"reason": reason}, duration=limit)
        else:
            schedule_dialer_step(call, None, call.dialer_state)


# --- dialing ---------------------------------------------------------------------------------------


def _claim(call_id: Any, dial_seconds: float) -> bool:
    """Move the call from `queued` to `dialing` — once, whichever worker gets there first."""
    now = timezone.now()
    state = {"phase": "dialing", "dial_started_at": now.isoformat()}
    due = now + timedelta(seconds=dial_seconds + GUARD_MARGIN_SECONDS)
    claimed = Call.objects.filter(pk=call_id, status=CallStatus.INITIATING, dialer_state__phase="queued").update(
        dialer_state=state, dialer_due_at=due, dialer_lease_until=None
    )
    return claimed == 1


def dial(call_id: Any) -> None:
    """Dial a queued call (the `calls.livekit_dial` task): dispatch the agent, ring, report the outcome."""
    call = Call.objects.select_related("sip_trunk", "agent").filter(pk=call_id).first()
    if call is None:
        return
    config = settings_of(call.sip_trunk.dialer_config)
    # The SDK's own request timeout while waiting for an answer: ringing_timeout + 2 s.
    if not _claim(call.pk, config["ringing_timeout"] + 2):
        return
    call.refresh_from_db(fields=["dialer_state", "dialer_due_at", "dialer_lease_until"])
    plan = _DialPlan(
        room=room_name(call),
        agent_name=call.agent.agent_code,
        metadata=json.dumps({"call_id": str(call.pk), "metadata": call.metadata}, separators=(",", ":")),
        phone_number=call.phone_number,
        trunk_phone=call.sip_trunk.trunk_phone,
        sip_trunk_id=config["sip_trunk_id"],
        ringing_timeout=config["ringing_timeout"],
        max_call_duration=config["max_call_duration"],
    )
    try:
        answered = livekit_client.run(call.sip_trunk, lambda api: _dial(api, plan))
    except livekit_client.LiveKitUnavailable as exc:
        record_call_event(call, CallStatus.TRIGGER_FAILED, SOURCE, detail={"reason": str(exc)})
        return
    except Exception as exc:
        # `_dial` reports every SDK failure itself; this is the client failing to start at all.
        logger.exception("could not start the LiveKit client", extra={"call_id": str(call.pk)})
        record_call_event(call, CallStatus.TRIGGER_FAILED, SOURCE, detail=livekit_client.describe(exc))
        return
    status, detail = answered
    event = record_call_event(call, status, SOURCE, provider_call_id=detail.pop("sip_call_id", ""), detail=detail)
    if status == CallStatus.ANSWERED and not event.ignored:
        due = timezone.now() + timedelta(seconds=config["max_call_duration"] + GUARD_MARGIN_SECONDS)
        schedule_dialer_step(call, due, {"phase": "answered"})
        _end_if_already_left(call)


@dataclass(frozen=True)
class _DialPlan:
    """Everything the dial needs, read from the database before the event loop starts (the ORM is
    synchronous and must not run inside it)."""

    room: str
    agent_name: str
    metadata: str
    phone_number: str
    trunk_phone: str
    sip_trunk_id: str
    ringing_timeout: int
    max_call_duration: int


async def _dial(api: Any, plan: _DialPlan) -> tuple[str, dict]:
    from livekit import api as lk

    try:
        dispatch = await api.agent_dispatch.create_dispatch(
            lk.CreateAgentDispatchRequest(agent_name=plan.agent_name, room=plan.room, metadata=plan.metadata)
        )
    except Exception as exc:
        return CallStatus.TRIGGER_FAILED, {"step": "dispatch", **livekit_client.describe(exc)}
    request = lk.CreateSIPParticipantRequest(
        sip_trunk_id=plan.sip_trunk_id,
        sip_call_to=plan.phone_number,
        sip_number=plan.trunk_phone,
        room_name=plan.room,
        participant_identity=CALLEE,
        wait_until_answered=True,
    )
    request.ringing_timeout.seconds = plan.ringing_timeout
    request.max_call_duration.seconds = plan.max_call_duration
    try:
        participant = await api.sip.create_sip_participant(request)
    except Exception as exc:
        status = outcome_of(exc)
        await _close_room(api, plan.room)
        return status, {"step": "sip_participant", "dispatch_id": dispatch.id, **livekit_client.describe(exc)}
    return CallStatus.ANSWERED, {
        "dispatch_id": dispatch.id,
        "participant_id": participant.participant_id,
        "sip_call_id": participant.sip_call_id,
    }


def outcome_of(exc: BaseException) -> str:
    """The call status a failed CreateSIPParticipant means (SPEC §16's mapping)."""
    import aiohttp
    from livekit.api import ServerError

    code = getattr(exc, "sip_status_code", None)
    if isinstance(code, int):
        return CallStatus.DECLINE if code in DECLINE_SIP_CODES else CallStatus.SIP_CALL_FAILED
    if isinstance(exc, ServerError):
        return CallStatus.TRIGGER_FAILED if exc.code in REFUSED_CODES else CallStatus.SIP_CALL_FAILED
    if isinstance(exc, aiohttp.ClientConnectorError | http.DestinationNotAllowed):
        return CallStatus.TRIGGER_FAILED  # never reached the server: nothing rang
    return CallStatus.SIP_CALL_FAILED  # a timeout or a dropped connection while ringing: no answer


async def _close_room(api: Any, room: str) -> None:
    """Best effort: a call that was not answered needs no room (the dispatched agent leaves with it)."""
    from livekit import api as lk

    try:
        await api.room.delete_room(lk.DeleteRoomRequest(room=room))
    except Exception:
        logger.info("could not delete LiveKit room %s", room, exc_info=True)


# --- the end of a call -----------------------------------------------------------------------------


def complete(call: Call, occurred_at: datetime | None, *, detail: dict, duration: int | None = None) -> Any:
    """Record the end of an answered call as Completed, with the conversation's analysis as outcome.

    Called by the room's webhooks and by the voice worker; whichever comes first ends the call and
    the other is recorded as ignored (terminal calls never change).
    """
    return record_call_event(
        call,
        CallStatus.COMPLETED,
        SOURCE,
        occurred_at=occurred_at,
        duration=duration,
        call_outcome=call_outcome(call),
        detail=detail,
    )


def call_outcome(call: Call) -> dict | None:
    """The analysis of the call's conversation: the §14 runtime's `finish` (idempotent, so the voice
    worker and a webhook asking both get the same one). None for a call without a conversation."""
    conversation = call.conversation
    if conversation is None:
        return None
    try:
        outcome = runtime.finish(conversation)
    except Exception:
        # The call did end; a failed analysis must not keep it live (the runtime logs its own cause).
        logger.exception("analysis failed", extra={"call_id": str(call.pk)})
        return None
    return outcome if isinstance(outcome, dict) else None


def _end_if_already_left(call: Call) -> None:
    """The callee may hang up before the dial's answer is recorded; its webhook was kept, so end now."""
    event = call.events.filter(source=SOURCE, ignored=True, detail__ends_call=True).order_by("occurred_at").first()
    if event is not None:
        complete(call, event.occurred_at, detail={"reason": "the room ended while the answer was being recorded"})
