"""One tool call the model asked for, run with the burden levels enforced by the server (SPEC §14).

- `end_call` ends the call (the agent's `end_call_message` is spoken);
- `verify_identity` compares the stated values with the metadata (calls.runtime.verification);
- an endpoint tool runs through `calls.tools.invoke_tool` (validation, executor, logs); `verified`
  tools are refused until verification succeeded, `confirmed` tools need a pending confirmation of the
  exact same arguments asked in an earlier turn; `say_on_start`, `say_on_delay`, the response
  template and `say_on_failure` are spoken verbatim.
Everything the model gets back is JSON without secrets (the executor's redacted result).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from calls.runtime import prompt, verification
from calls.tools import (
    CONFIRMED_ARGUMENT,
    DEFAULT_SAY_DELAY,
    ToolRefused,
    confirmation_prompt,
    invoke_tool,
    redact_arguments,
    takes_confirmation_argument,
)
from integrations.models import Burden, Endpoint
from integrations.parameters import ParameterError, coerce, validate_arguments
from integrations.redaction import Redactor
from rules import ai
from rules import services as conversations
from tenants.secrets import MASK

MAX_RESULT_CHARS = 6000
MAX_CALLS_PER_ROUND = 10  # a model asking for more at once gets the rest refused, not run


@dataclass
class Step:
    """What one tool call produced: the JSON the model gets, utterances, the public record, control flow."""

    content: dict[str, Any]
    say: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)
    stop_turn: bool = False
    ended: bool = False
    end_reason: str = ""


def model_content(step: Step) -> str:
    text = json.dumps(step.content, ensure_ascii=False, default=str)
    if len(text) > MAX_RESULT_CHARS:
        text = json.dumps({**{k: v for k, v in step.content.items() if k != "result"}, "result": "(too long, omitted)"})
    return text


class ToolRunner:
    """Runs the tool calls of one turn; `state` is the session's state (pending confirmation, attempts)."""

    def __init__(self, runtime: Any) -> None:
        self.rt = runtime
        self.state = runtime.session.state
        self.calls_this_round = 0

    def run(self, call: ai.ToolCall) -> Step:
        if self.calls_this_round >= MAX_CALLS_PER_ROUND:
            step = self._refused(call, f"at most {MAX_CALLS_PER_ROUND} tool calls at a time")
        elif call.malformed:
            step = self._refused(call, "the arguments were not a JSON object; call the tool again with valid JSON")
        elif call.name == prompt.END_CALL:
            step = self._end_call(call)
        elif call.name == prompt.VERIFY_IDENTITY and self.rt.agent.verification:
            step = self._verify(call)
        elif call.name in self.rt.endpoints:
            step = self._endpoint(call, self.rt.endpoints[call.name])
        else:
            step = self._refused(call, f"there is no tool named {call.name[:100]!r}")
        self.calls_this_round += 1
        step.record.setdefault("tool", call.name[:100])
        return step

    def new_round(self) -> None:
        self.calls_this_round = 0

    # -- refusals and built-ins --------------------------------------------------------------------
    def _log(self, call: ai.ToolCall, status: str, arguments: Any, **data: Any) -> None:
        conversations.record_tool_message(
            self.rt.conversation,
            text=f"{call.name[:100]}: {status}",
            data={"tool": call.name[:100], "arguments": arguments, "status": status, "tool_call_id": call.id, **data},
        )

    def _refused(self, call: ai.ToolCall, reason: str, *, arguments: Any = None) -> Step:
        shown = redact_arguments(call.arguments if arguments is None else arguments, Redactor())
        self._log(call, "refused", shown, error=reason)
        return Step({"status": "refused", "error": reason}, record={"arguments": shown, "status": "refused"})

    def _end_call(self, call: ai.ToolCall) -> Step:
        reason = str(call.arguments.get("reason") or "the agent ended the call")[:100]
        goodbye = prompt.render(self.rt.agent.end_call_message, self.rt.context)
        self._log(call, "ended", {"reason": reason})
        record = {"arguments": {"reason": reason}, "status": "ended"}
        return Step({"status": "ended"}, say=[goodbye] if goodbye else [], record=record, ended=True, end_reason=reason)

    def _verify(self, call: ai.ToolCall) -> Step:
        keys = list(self.rt.agent.verification)
        masked = dict.fromkeys(call.arguments, MASK)
        failures = int(self.state.get("verify_failures", 0))
        if self.rt.conversation.identity_verified:
            return self._verified_step(call, masked, {"verified": True})
        if failures >= verification.MAX_ATTEMPTS:
            return self._refused(call, "verification is locked after too many failed attempts", arguments=masked)
        missing = [key for key in keys if not str(call.arguments.get(key) or "").strip()]
        if missing:
            return self._refused(call, f"ask the caller for {', '.join(missing)} first", arguments=masked)
        if verification.check(keys, call.arguments, self.rt.conversation.variables or {}):
            self.rt.mark_verified()
            return self._verified_step(call, masked, {"verified": True})
        failures += 1
        self.state["verify_failures"] = failures
        left = verification.MAX_ATTEMPTS - failures
        content: dict[str, Any] = {"verified": False, "attempts_left": left}
        if not left:
            content["error"] = "verification is now locked for this conversation; do not try again"
        return self._verified_step(call, masked, content)

    def _verified_step(self, call: ai.ToolCall, masked: dict, content: dict) -> Step:
        status = "verified" if content["verified"] else "not_verified"
        self._log(call, status, masked)
        return Step(content, record={"arguments": masked, "status": status})

    # -- endpoint tools ----------------------------------------------------------------------------
    def _endpoint(self, call: ai.ToolCall, endpoint: Endpoint) -> Step:
        arguments = dict(call.arguments)
        if endpoint.burden == Burden.VERIFIED and not self.rt.conversation.identity_verified:
            how = f"call {prompt.VERIFY_IDENTITY} first" if self.rt.agent.verification else "this agent cannot verify"
            return self._refused(call, f"the caller's identity must be verified before {call.name} ({how})")
        confirmed = False
        if endpoint.burden == Burden.CONFIRMED:
            flag = arguments.pop(CONFIRMED_ARGUMENT, False) if takes_confirmation_argument(endpoint) else False
            try:
                values = validate_arguments(endpoint, arguments, allow_extra=False)
                flag = coerce("boolean", flag)
            except (ParameterError, ValueError) as exc:
                reason = exc.messages[0] if isinstance(exc, ParameterError) else f"{CONFIRMED_ARGUMENT} {exc}"
                return self._refused(call, f"arguments: {reason}")
            if not self._confirmation_due(call.name, values, flag):
                return self._ask_confirmation(call, endpoint, values)
            confirmed = True
        return self._invoke(call, endpoint, arguments, confirmed)

    def _confirmation_due(self, name: str, values: dict, flag: bool) -> bool:
        pending = self.state.get("pending_confirmation")
        agreed = (
            flag
            and pending is not None
            and pending["tool"] == name
            and pending["arguments"] == json.loads(json.dumps(values, default=str))
            and pending["turn"] < self.rt.session.turns
        )
        if agreed:
            self.state.pop("pending_confirmation", None)
        return bool(agreed)

    def _ask_confirmation(self, call: ai.ToolCall, endpoint: Endpoint, values: dict) -> Step:
        stored = json.loads(json.dumps(values, default=str))
        self.state["pending_confirmation"] = {"tool": call.name, "arguments": stored, "turn": self.rt.session.turns}
        shown = redact_arguments(values, Redactor())
        question = confirmation_prompt(endpoint, shown).replace("Please confirm:", "Just to confirm, shall I", 1)
        question = question.rstrip(".") + "?"
        self._log(call, "confirmation_requested", shown, say=question)
        content = {
            "status": "confirmation_requested",
            "question_spoken": question,
            "instruction": "Wait for the caller's answer. If they agree, call this tool again with exactly the same "
            f"arguments and {CONFIRMED_ARGUMENT}=true.",
        }
        record = {"arguments": shown, "status": "confirmation_requested"}
        return Step(content, say=[question], record=record, stop_turn=True)

    def _invoke(self, call: ai.ToolCall, endpoint: Endpoint, arguments: dict, confirmed: bool) -> Step:
        self.rt.speak(endpoint.say_on_start, "tool")  # before the request goes out
        say: list[str] = []
        try:
            outcome = invoke_tool(
                self.rt.conversation.tenant,
                call.name,
                self.rt.conversation,
                arguments,
                confirmed=confirmed,
                log_data={"tool_call_id": call.id},
            )
        except ToolRefused as exc:
            return self._refused(call, str(exc))
        result = outcome.result
        delay = endpoint.say_on_delay_seconds or DEFAULT_SAY_DELAY
        if endpoint.say_on_delay and result.duration_ms > delay * 1000:
            say.append(endpoint.say_on_delay)
        if outcome.say:
            say.append(outcome.say)
        public = result.to_dict()
        content: dict[str, Any] = {"status": public["status"], "status_code": public["status_code"]}
        content["result"] = public["mapped"] or public["body"]
        if public.get("error"):
            content["error"] = public["error"]
        if outcome.say:
            content["spoken_to_caller"] = outcome.say
        redactor = result.request.redactor if result.request else Redactor()
        record = {
            "arguments": redact_arguments(arguments, redactor),
            "status": result.status,
            "status_code": result.status_code,
            "duration_ms": result.duration_ms,
            "request": _request_line(result),
            "result": _bounded(public["mapped"] or public["body"]),
        }
        return Step(content, say=say, record=record)


def _bounded(value: Any) -> Any:
    """A result fit for the turn's record: a huge body is left out, not copied into every answer."""
    return value if len(json.dumps(value, default=str)) <= MAX_RESULT_CHARS else "(too long, omitted)"


def _request_line(result: Any) -> dict | None:
    """The request as sent, secrets removed (what the admin's chat shows)."""
    request = getattr(result, "request", None)
    return request.redacted() if request is not None else None
