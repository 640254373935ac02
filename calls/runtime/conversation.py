"""start / respond / finish: the agent holds a conversation (SPEC §14). Transports are thin adapters.

One `_Runtime` per call of respond: it loads the session, the agent's endpoints and the history once,
asks the provider at most MAX_TOOL_ROUNDS times, runs the tool calls (calls.runtime.tooling), and
saves what was said as messages of the conversation, in order.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calls.models import AgentSession
from calls.runtime import analysis, prompt
from calls.runtime.state import AgentRuntimeError, Clock, Turn, provider_or_error, session_of
from calls.runtime.tooling import ToolRunner, model_content
from rules import ai
from rules.models import Conversation, Message, MessageRole

logger = logging.getLogger(__name__)
MAX_TOOL_ROUNDS = 5
APOLOGY = "I'm sorry, I'm having technical difficulties and have to end the call here. Goodbye."
TOO_MANY_ROUNDS = "I'm sorry, I couldn't finish that just now."
DEFAULT_GOODBYE = "Thank you for your time. Goodbye."
ENDED = "this conversation has ended"
BUSY = "the agent is still answering the previous message"
# Longer than any turn can take (its provider and tool calls all have timeouts): a claim left by a
# crashed process expires.
BUSY_SECONDS = 300


class _Runtime:
    def __init__(self, conversation: Conversation, session: AgentSession) -> None:
        self.conversation = conversation
        self.session = session
        self.agent = session.agent
        self.context = prompt.template_context(conversation, self.agent)
        self.endpoints = prompt.agent_endpoints(self.agent)
        self.clock = Clock()
        self.turn = Turn()
        self.spoken: list[Message] = []

    def speak(self, text: str, kind: str = "reply") -> None:
        """Say `text`: part of the turn, saved with the turn's end (times taken now keep the order)."""
        if text:
            self.turn.say.append(text)
            self.spoken.append(self._message(MessageRole.ASSISTANT, text, {"kind": kind} if kind != "reply" else None))

    def _message(self, role: str, text: str, data: dict | None = None) -> Message:
        return Message(
            tenant_id=self.conversation.tenant_id,
            conversation=self.conversation,
            role=role,
            text=text,
            data=data,
            created_at=self.clock.next(),
        )

    def mark_verified(self) -> None:
        self.conversation.identity_verified = True
        Conversation.objects.filter(pk=self.conversation.pk).update(identity_verified=True)

    def end(self, reason: str, *, goodbye: str | None = None) -> None:
        if goodbye:
            self.speak(goodbye, "goodbye")
        self.turn.ended, self.turn.end_reason = True, reason
        self.session.ended_at = timezone.now()
        self.session.end_reason = reason[:100]

    def save(self) -> None:
        """Save what was said and the turn's state, and release the claim on the session (one commit)."""
        self.session.busy_until = None
        with transaction.atomic():
            Message.objects.bulk_create(self.spoken)
            self.session.save(update_fields=["state", "turns", "ended_at", "end_reason", "busy_until"])
        self.spoken = []

    # -- one caller turn ---------------------------------------------------------------------------
    def respond(self, provider: ai.AIProvider) -> Turn:
        self.session.turns += 1
        limit = self._over_limit()
        if limit:
            self.end(limit, goodbye=self._goodbye())
            return self.turn
        messages = [
            {"role": "system", "content": prompt.system_prompt(self.agent, self.context, self.endpoints)},
            *prompt.history(self.conversation),
        ]
        tools = prompt.tools_for(self.agent, self.endpoints)
        runner = ToolRunner(self)
        for _ in range(MAX_TOOL_ROUNDS):
            try:
                answer = provider.tool_call(messages, tools)
            except ai.AIError as exc:
                self.session.state["provider_error"] = str(exc)
                self.end("provider_error", goodbye=APOLOGY)
                return self.turn
            self.speak((answer.content or "").strip())
            if not answer.tool_calls or self._run_tools(answer, messages, runner):
                return self.turn
        self.speak(TOO_MANY_ROUNDS)
        return self.turn

    def _run_tools(self, answer: ai.ToolCallResult, messages: list[dict], runner: ToolRunner) -> bool:
        """Run one round of tool calls; True when the turn is over (the call ended or awaits the caller)."""
        messages.append({"role": "assistant", "content": answer.content, "tool_calls": _wire_calls(answer.tool_calls)})
        runner.new_round()
        stop = False
        for call in answer.tool_calls:
            step = runner.run(call)
            for text in step.say:
                self.speak(text, "tool")
            self.turn.tool_calls.append(step.record)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": model_content(step)})
            if step.ended:
                self.end(step.end_reason)
                return True
            stop = stop or step.stop_turn
        return stop

    def _over_limit(self) -> str:
        if self.session.turns > self.agent.max_turns:
            return "max_turns"
        elapsed = (timezone.now() - self.session.started_at).total_seconds()
        if elapsed > self.agent.max_duration_seconds:
            return "max_duration"
        return ""

    def _goodbye(self) -> str:
        return prompt.render(self.agent.end_call_message, self.context) or DEFAULT_GOODBYE


def _wire_calls(calls: list[ai.ToolCall]) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
        for c in calls
    ]


def _open(conversation: Conversation) -> tuple[AgentSession, ai.AIProvider]:
    """The session, claimed for one turn (a conditional UPDATE: correct across processes, SQLite too)."""
    session = session_of(conversation)
    if session.ended or session.analysis is not None:
        raise AgentRuntimeError("ended", ENDED)
    provider = provider_or_error(conversation.tenant)
    now = timezone.now()
    claimed = (
        AgentSession.objects.filter(pk=session.pk)
        .filter(Q(busy_until__isnull=True) | Q(busy_until__lt=now))
        .update(busy_until=now + timedelta(seconds=BUSY_SECONDS))
    )
    if not claimed:
        raise AgentRuntimeError("busy", BUSY)
    session.refresh_from_db(fields=["state", "turns", "started_at", "ended_at", "end_reason", "busy_until", "analysis"])
    if session.ended or session.analysis is not None:  # ended by the turn that held the claim, or finished
        AgentSession.objects.filter(pk=session.pk).update(busy_until=None)
        raise AgentRuntimeError("ended", ENDED)
    return session, provider


def start(conversation: Conversation) -> Turn:
    """The agent's first turn: its rendered `first_message` (nothing when empty: it waits for the caller).

    Raises AgentRuntimeError: `no_provider` without an AI provider, `no_agent` when no agent holds
    the conversation, `ended` after the end. Calling it again after the first turn says nothing more.
    """
    session, _ = _open(conversation)
    runtime = _Runtime(conversation, session)
    try:
        if not session.state.get("started"):
            session.state["started"] = True
            session.started_at = timezone.now()
            session.save(update_fields=["started_at"])
            runtime.speak(prompt.render(session.agent.first_message, runtime.context), "first_message")
    finally:
        runtime.save()
    return runtime.turn


def respond(conversation: Conversation, text: str, *, record_caller: bool = True) -> Turn:
    """One turn: the caller's `text` in; what the agent said, the tools it ran, and whether it ended the call.

    Never raises for a provider failure (the agent apologises and ends the call, the failure is kept
    for the outcome); raises AgentRuntimeError as `start` does. `record_caller=False` when the caller's
    words are already a message of the conversation (the widget's rule engine recorded them).
    """
    with transaction.atomic():  # the claim and the caller's words in one commit
        session, provider = _open(conversation)
        if record_caller:  # saved at once: the caller's words are never lost with a failed turn
            Message.objects.create(
                tenant_id=conversation.tenant_id, conversation=conversation, role=MessageRole.VISITOR, text=text
            )
    try:
        runtime = _Runtime(conversation, session)
    except Exception:
        AgentSession.objects.filter(pk=session.pk).update(busy_until=None)
        raise
    try:
        return runtime.respond(provider)
    except Exception:
        # A live caller is better served by an apology than by silence: log it, end politely.
        logger.exception("agent turn failed", extra={"conversation_id": str(conversation.pk)})
        runtime.session.state["provider_error"] = "the agent failed to answer"
        runtime.end("error", goodbye=APOLOGY)
        return runtime.turn
    finally:
        runtime.save()


def finish(conversation: Conversation) -> dict[str, Any]:
    """End the conversation and return its analysis (the call's `call_outcome`); idempotent.

    The analysis is one provider call; without a provider, or when it fails, the outcome carries
    `analysis_error` (and "unknown" / nulls) instead of raising.
    """
    session = session_of(conversation)
    if session.analysis is not None:
        return session.analysis
    outcome = analysis.analyse(conversation, session.agent, ai.provider_for(conversation.tenant))
    if session.state.get("provider_error") and "analysis_error" not in outcome:
        outcome["analysis_error"] = f"the AI provider failed during the conversation: {session.state['provider_error']}"
    with transaction.atomic():
        locked = AgentSession.objects.select_for_update().get(pk=session.pk)
        if locked.analysis is not None:  # another process finished first: its answer stands
            return locked.analysis
        locked.analysis = outcome
        locked.ended_at = locked.ended_at or timezone.now()
        locked.end_reason = locked.end_reason or "finished"
        locked.save(update_fields=["analysis", "ended_at", "end_reason"])
    return outcome
