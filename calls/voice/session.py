"""One phone call's conversation in LiveKit Agents, held by §14's runtime (`calls.runtime`).

LiveKit Agents turns the caller's audio into text (STT), asks an `llm.LLM` for the reply and speaks it
(TTS). `RuntimeLLM` is that LLM: each caller turn goes to `calls.runtime.respond` — which owns the
prompt, the tools (through `invoke_tool`: validation, executor, logs), the burden rules, the spoken
tool messages and `end_call` — and its utterances come back as the reply, verbatim. `CallAgent` speaks
the runtime's first turn (`start`, the rendered `first_message`) when the session starts, and hangs up
when a turn ends the call. When the session closes, for whatever reason, `finish_call` runs the
analysis (`finish`) and reports Completed through the one call-event service.

The runtime and the ORM are synchronous: they run in worker threads (`_in_thread`), never on the
event loop, and every thread returns its database connection when done.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from django.db import close_old_connections
from django.utils import timezone
from livekit.agents import Agent, AgentSession, llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, APIConnectOptions

from calls import runtime
from calls.dialers import livekit
from calls.models import LIVE_STATUSES, Call
from rules.models import Conversation

logger = logging.getLogger(__name__)
T = TypeVar("T")
# Said when a caller's words cannot be answered at all (the runtime itself apologises for provider errors).
FALLBACK_APOLOGY = "Sorry, something went wrong on our side. We will call you back."


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    def run() -> T:
        close_old_connections()
        try:
            return function(*args)
        finally:
            close_old_connections()

    return await asyncio.to_thread(run)


def load_call(call_id: str) -> Call | None:
    """The live call a dispatch names (with its agent and conversation), or None."""
    try:
        key = uuid.UUID(str(call_id))
    except ValueError:
        return None
    call = Call.objects.select_related("agent", "sip_trunk", "conversation").filter(pk=key).first()
    if call is None or call.status not in LIVE_STATUSES or call.conversation is None:
        return None
    return call


def finish_call(call: Call, reason: str) -> None:
    """Run the analysis and report the call Completed (ignored when a webhook already ended it)."""
    livekit.complete(call, timezone.now(), detail={"reason": reason, "reported_by": "voice_worker"})


@dataclass
class TurnTiming:
    """Where a turn's time went: in the runtime (AI provider and tools included) and in total."""

    runtime_seconds: float
    total_seconds: float


@dataclass
class CallConversation:
    """The runtime's side of one call: turns in threads, the end of the call, and per-turn timings."""

    call: Call
    ended: bool = False
    end_reason: str = ""
    timings: list[TurnTiming] = field(default_factory=list)
    # One turn at a time: the caller may speak while the first message is still being prepared, and
    # the runtime refuses overlapping turns of one conversation (`conflict`).
    _turn_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def conversation(self) -> Conversation:
        conversation = self.call.conversation
        if conversation is None:
            raise runtime.AgentRuntimeError("no_agent", "this call has no conversation to hold")
        return conversation

    async def first_turn(self) -> str:
        async with self._turn_lock:
            turn = await _in_thread(lambda: runtime.start(self.conversation))
        self._note_end(turn)
        return turn.reply

    async def respond(self, text: str) -> tuple[str, float]:
        """The agent's reply to the caller's `text`, and the seconds the runtime took for it."""
        started = time.perf_counter()
        try:
            async with self._turn_lock:
                turn = await _in_thread(lambda: runtime.respond(self.conversation, text))
        except runtime.AgentRuntimeError as exc:
            logger.warning("the runtime refused a turn: %s", exc.code, extra={"call_id": str(self.call.pk)})
            if exc.code == "conflict":  # another job holds this conversation (a duplicate dispatch)
                return "", time.perf_counter() - started
            # e.g. the conversation already ended, or the tenant lost its AI provider mid-call.
            self.ended, self.end_reason = True, f"runtime: {exc.code}"
            return FALLBACK_APOLOGY, time.perf_counter() - started
        self._note_end(turn)
        return turn.reply, time.perf_counter() - started

    def _note_end(self, turn: Any) -> None:
        if turn.ended:
            self.ended = True
            self.end_reason = turn.end_reason or "the agent ended the call"


class RuntimeLLM(llm.LLM):
    """LiveKit Agents' LLM interface over the runtime: the reply to the caller's latest words."""

    def __init__(self, conversation: CallConversation, on_end: Callable[[], None]) -> None:
        super().__init__()
        self.conversation = conversation
        self.on_end = on_end

    @property
    def model(self) -> str:
        return "switchboard-runtime"

    @property
    def provider(self) -> str:
        return "switchboard"

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: Any = NOT_GIVEN,
        tool_choice: Any = NOT_GIVEN,
        extra_kwargs: Any = NOT_GIVEN,
    ) -> RuntimeStream:
        # No retries here: a turn runs tools, and the runtime already retried and apologised if needed.
        options = APIConnectOptions(max_retry=0, timeout=conn_options.timeout)
        return RuntimeStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=options)


class RuntimeStream(llm.LLMStream):
    async def _run(self) -> None:
        owner = cast(RuntimeLLM, self._llm)
        text = _latest_caller_words(self.chat_ctx)
        if not text:
            return
        started = time.perf_counter()
        reply, runtime_seconds = await owner.conversation.respond(text)
        owner.conversation.timings.append(TurnTiming(runtime_seconds, time.perf_counter() - started))
        if reply:
            self._event_ch.send_nowait(
                llm.ChatChunk(id=f"turn-{uuid.uuid4().hex[:8]}", delta=llm.ChoiceDelta(role="assistant", content=reply))
            )
        if owner.conversation.ended:
            owner.on_end()


def _latest_caller_words(chat_ctx: llm.ChatContext) -> str:
    for item in reversed(chat_ctx.items):
        if isinstance(item, llm.ChatMessage) and item.role == "user":
            return (item.text_content or "").strip()
    return ""


class CallAgent(Agent):
    """Speaks the first turn on entering; hangs up (after speaking) when the runtime ends the call."""

    def __init__(self, conversation: CallConversation) -> None:
        # The runtime builds the real prompt; LiveKit's own instructions are never sent to a model.
        super().__init__(instructions="Switchboard agent runtime")
        self.conversation = conversation

    async def on_enter(self) -> None:
        first = await self.conversation.first_turn()
        if first:
            self.session.say(first, add_to_chat_ctx=True)
        if self.conversation.ended:
            self.hang_up()

    def hang_up(self) -> None:
        """End the session once what is being said has been said (drain)."""
        self.session.shutdown(drain=True)


def build_session(conversation: CallConversation, agent: CallAgent, **speech: Any) -> AgentSession:
    """The AgentSession of one call: the runtime as its LLM, plus the call's `stt`/`tts`/`vad` if any.

    Preemptive generation is off: LiveKit would start a reply on a transcript the caller may still
    extend and throw it away — but a runtime turn runs tools and is recorded, so it must run once, on
    the caller's finished words.
    """
    return AgentSession(
        llm=RuntimeLLM(conversation, agent.hang_up),
        turn_handling={"preemptive_generation": {"enabled": False}},
        **{name: value for name, value in speech.items() if value is not None},
    )
