"""The `simulated` dialer: drives a call through Ringing → Answered → terminal without a carrier.

Its trunk's `dialer_config`:
- `ring_seconds` (default 2): time from dialing to answer (or to the decline / SIP failure);
- `talk_seconds` (default 8): length of the conversation of an answered call;
- `outcome` (default `completed`): `completed`, `declined`, `sip_failed`, `trigger_failed`, or a map of
  those to weights (e.g. `{"completed": 8, "declined": 1, "sip_failed": 1}`), drawn once per call;
- `caller` (optional, calls.dialers.simulated_caller): who answers. With it, an answered call runs the
  agent's real runtime (its tools against the tenant's APIs), one turn per dialer step, and ends
  `Completed` with the analysis as its outcome; without an AI provider the call is `Trigger Failed`.

At `place()` the outcome is drawn and turned into a plan of (status, offset) steps kept in
`call.dialer_state`; each step is a due time on the call, run by the `calls.advance_call` task (sent
with a short countdown) or by the periodic sweep, so nothing depends on a long broker countdown.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from calls import runtime
from calls.dialers import Dialer, DialerConfigError, simulated_caller
from calls.dialing import schedule_dialer_step
from calls.events import record_call_event
from calls.models import Call, CallStatus
from calls.representations import transcript_url
from rules import ai

OUTCOMES = ("completed", "declined", "sip_failed", "trigger_failed")
DEFAULTS = {"ring_seconds": 2.0, "talk_seconds": 8.0, "outcome": "completed"}
SETTINGS = (*DEFAULTS, "caller")
MAX_SECONDS = {"ring_seconds": 300.0, "talk_seconds": 3600.0}
SOURCE = "simulated"


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DialerConfigError(f"{name} must be a number of seconds")
    if not 0 <= value <= MAX_SECONDS[name]:
        raise DialerConfigError(f"{name} must be between 0 and {MAX_SECONDS[name]:g}")
    return float(value)


def _outcome(value: Any) -> str | dict[str, float]:
    if isinstance(value, str):
        if value not in OUTCOMES:
            raise DialerConfigError(f"outcome must be one of {', '.join(OUTCOMES)}, or a map of them to weights")
        return value
    if isinstance(value, dict) and value:
        unknown = sorted(set(value) - set(OUTCOMES))
        if unknown:
            raise DialerConfigError(f"unknown outcome(s): {', '.join(unknown)}")
        weights = {}
        for name, weight in value.items():
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
                raise DialerConfigError(f"the weight of {name} must be a non-negative number")
            weights[name] = float(weight)
        if sum(weights.values()) <= 0:
            raise DialerConfigError("at least one outcome weight must be positive")
        return weights
    raise DialerConfigError(f"outcome must be one of {', '.join(OUTCOMES)}, or a map of them to weights")


def _plan(outcome: str, ring: float, talk: float) -> list[tuple[str, float]]:
    if outcome == "completed":
        return [(CallStatus.RINGING, 0.0), (CallStatus.ANSWERED, ring), (CallStatus.COMPLETED, ring + talk)]
    if outcome == "declined":
        return [(CallStatus.RINGING, 0.0), (CallStatus.DECLINE, ring)]
    if outcome == "sip_failed":
        return [(CallStatus.SIP_CALL_FAILED, 0.0)]
    return [(CallStatus.TRIGGER_FAILED, 0.0)]


def _call_outcome(call: Call, outcome: str) -> dict | None:
    # The runtime's shape (SPEC §14) with nothing extracted: no one spoke in a call without a caller.
    if outcome == "completed":
        return {
            "disposition": "completed",
            "summary": f"Simulated conversation of {call.agent.name} with {call.phone_number}.",
            "sentiment": "positive",
            "extracted": {},
        }
    if outcome == "declined":
        summary = "The callee declined the call."
        return {"disposition": "declined", "summary": summary, "sentiment": "neutral", "extracted": {}}
    return None


class SimulatedDialer(Dialer):
    name = "simulated"

    def validate_config(self, config: Any) -> dict:
        if config is None:
            config = {}
        if not isinstance(config, dict):
            raise DialerConfigError("dialer_config must be a JSON object")
        unknown = sorted(set(config) - set(SETTINGS))
        if unknown:
            raise DialerConfigError(f"unknown setting(s) for the simulated dialer: {', '.join(unknown)}")
        clean: dict[str, Any] = {}
        for name in ("ring_seconds", "talk_seconds"):
            if name in config:
                clean[name] = _seconds(name, config[name])
        if "outcome" in config:
            clean["outcome"] = _outcome(config["outcome"])
        if config.get("caller") is not None:
            clean["caller"] = simulated_caller.validate(config["caller"])
        return clean

    def settings_of(self, config: dict | None) -> dict:
        return {**DEFAULTS, **(config or {})}

    def expected_duration(self, config: dict) -> float:
        merged = self.settings_of(config)
        return merged["ring_seconds"] + merged["talk_seconds"]

    def draw_outcome(self, config: dict | None) -> str:
        outcome = self.settings_of(config)["outcome"]
        if isinstance(outcome, dict):
            names = list(outcome)
            return random.choices(names, weights=[outcome[n] for n in names])[0]
        return outcome

    def place(self, call: Call) -> None:
        config = self.settings_of(call.sip_trunk.dialer_config)
        caller = config.get("caller")
        if caller and ai.provider_for(call.tenant) is None:
            Call.objects.filter(pk=call.pk).update(rejection_reason=runtime.NEEDS_PROVIDER)
            record_call_event(call, CallStatus.TRIGGER_FAILED, SOURCE, detail={"reason": runtime.NEEDS_PROVIDER})
            schedule_dialer_step(call, None, {"reason": runtime.NEEDS_PROVIDER})
            return
        outcome = self.draw_outcome(config)
        plan = _plan(outcome, float(config["ring_seconds"]), float(config["talk_seconds"]))
        if caller and outcome == "completed":
            plan = plan[:-1]  # the conversation decides when the call ends
        state = {
            "outcome": outcome,
            "placed_at": timezone.now().isoformat(),
            "plan": [[str(status), offset] for status, offset in plan],
            "next": 0,
            "converse": bool(caller and outcome == "completed"),
        }
        self._run_due_steps(call, state)

    def advance(self, call: Call) -> None:
        if not call.dialer_state.get("plan"):
            self.place(call)
            return
        self._run_due_steps(call, dict(call.dialer_state))

    def _run_due_steps(self, call: Call, state: dict) -> None:
        placed_at = parse_datetime(state["placed_at"])
        if placed_at is None:
            raise ValueError(f"unreadable placed_at in the dialer state: {state['placed_at']!r}")
        plan = state["plan"]
        while state["next"] < len(plan):
            status, offset = plan[state["next"]]
            due_at = placed_at + timedelta(seconds=offset)
            if due_at > timezone.now():
                schedule_dialer_step(call, due_at, state)
                return
            state["next"] += 1
            extra: dict[str, Any] = {}
            if status in (CallStatus.COMPLETED, CallStatus.DECLINE):
                extra["call_outcome"] = _call_outcome(call, state["outcome"])
            record_call_event(call, status, SOURCE, detail={"outcome": state["outcome"]}, **extra)
        if state.get("converse") and not call.is_terminal:
            self._converse(call, state)
            return
        schedule_dialer_step(call, None, state)

    def _converse(self, call: Call, state: dict) -> None:
        """One turn of the conversation per step (short steps: a lease never outlives a long call)."""
        conversation = call.conversation
        assert conversation is not None  # trigger_call gives every accepted call its conversation
        caller = self.settings_of(call.sip_trunk.dialer_config).get("caller") or {"script": []}
        try:
            if not state.get("started"):
                state["started"], state["turn"] = True, 0
                ended = runtime.start(conversation).ended
            else:
                line = simulated_caller.next_line(caller, state["turn"], conversation, ai.provider_for(call.tenant))
                state["turn"] += 1
                ended = line is None or runtime.respond(conversation, line).ended
        except runtime.AgentRuntimeError:
            ended = True  # the agent ended the call, or the provider went away: analyse what was said
        if ended:
            self._hang_up(call, state)
            return
        schedule_dialer_step(call, timezone.now(), state)

    def _hang_up(self, call: Call, state: dict) -> None:
        # The analysis is stored on the call in the same transaction that writes the callback row.
        assert call.conversation is not None  # trigger_call gives every accepted call its conversation
        outcome = runtime.finish(call.conversation)
        detail = {"outcome": "conversation", "turns": state.get("turn", 0)}
        record_call_event(
            call, CallStatus.COMPLETED, SOURCE, call_outcome=outcome, transcript_url=transcript_url(call), detail=detail
        )
        schedule_dialer_step(call, None, state)
