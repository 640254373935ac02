"""The simulated dialer's `caller`: who answers a simulated call, so the agent's runtime really talks.

`{"script": ["Hello?", "Yes, it's Rahul", "Bye"]}` — one line per agent turn; when the script runs
out the caller hangs up. `{"persona": "You are Rahul; you will pay on 20 June", "max_turns": 8}` — the
caller is played by the tenant's AI provider, which sees only the persona and what the agent said.
"""

from __future__ import annotations

from typing import Any

from calls.dialers import DialerConfigError
from rules import ai
from rules.models import Conversation, MessageRole

MAX_SCRIPT_LINES = 100
MAX_LINE_CHARS = 2000
DEFAULT_PERSONA_TURNS = 8
MAX_PERSONA_TURNS = 50
HANG_UP = "HANG UP"
PERSONA_PROMPT = (
    "You are role-playing the person who answered a phone call from a business's agent. {persona}\n"
    "Answer the agent's last words as that person would, in one or two short spoken sentences. When you "
    f"want to end the call, answer exactly {HANG_UP}."
)


def validate(value: Any) -> dict:
    """The normalised `caller` setting, or DialerConfigError saying what is wrong."""
    if not isinstance(value, dict) or len({"script", "persona"} & set(value)) != 1:
        raise DialerConfigError("caller must be an object with either a script (list of lines) or a persona")
    unknown = sorted(set(value) - {"script", "persona", "max_turns"})
    if unknown:
        raise DialerConfigError(f"unknown caller setting(s): {', '.join(unknown)}")
    if "script" in value:
        script = value["script"]
        if (
            not isinstance(script, list)
            or not script
            or not all(isinstance(line, str) and line.strip() for line in script)
        ):
            raise DialerConfigError("caller.script must be a non-empty list of lines")
        if len(script) > MAX_SCRIPT_LINES or any(len(line) > MAX_LINE_CHARS for line in script):
            raise DialerConfigError(f"caller.script holds at most {MAX_SCRIPT_LINES} lines of {MAX_LINE_CHARS} chars")
        if "max_turns" in value:
            raise DialerConfigError("caller.max_turns is for a persona (a script ends with its last line)")
        return {"script": [line.strip() for line in script]}
    persona = value["persona"]
    if not isinstance(persona, str) or not persona.strip() or len(persona) > MAX_LINE_CHARS:
        raise DialerConfigError(f"caller.persona must be a description of at most {MAX_LINE_CHARS} characters")
    turns = value.get("max_turns", DEFAULT_PERSONA_TURNS)
    if isinstance(turns, bool) or not isinstance(turns, int) or not 1 <= turns <= MAX_PERSONA_TURNS:
        raise DialerConfigError(f"caller.max_turns must be a whole number between 1 and {MAX_PERSONA_TURNS}")
    return {"persona": persona.strip(), "max_turns": turns}


def next_line(caller: dict, turn: int, conversation: Conversation, provider: ai.AIProvider | None) -> str | None:
    """What the caller says at `turn` (0-based), or None when they hang up."""
    if "script" in caller:
        script = caller["script"]
        return script[turn] if turn < len(script) else None
    if turn >= caller["max_turns"] or provider is None:
        return None
    messages = [{"role": "system", "content": PERSONA_PROMPT.format(persona=caller["persona"])}]
    roles: dict[str, str] = {MessageRole.ASSISTANT: "user", MessageRole.VISITOR: "assistant"}
    for message in conversation.messages.filter(role__in=roles).order_by("created_at", "id"):
        if message.text:
            messages.append({"role": roles[message.role], "content": message.text})
    if len(messages) == 1:
        messages.append({"role": "user", "content": "(the line is silent; the agent waits for you)"})
    try:
        said = (provider.tool_call(messages, []).content or "").strip()
    except ai.AIError:
        return None  # the caller's side failing hangs up; the agent's analysis still runs
    return None if not said or HANG_UP in said.upper() else said[:MAX_LINE_CHARS]
