"""The post-conversation analysis (`finish`): one provider call with a JSON Schema built from `analysis`.

The answer is validated and coerced: a disposition outside the agent's list becomes "unknown", a
sentiment outside positive/neutral/negative becomes "neutral", every extracted value is coerced to its
declared type or null. The result is the call's `call_outcome`:
`{"disposition", "summary", "sentiment", "extracted": {...}}`, plus `analysis_error` when the provider
failed (mid-call or for the analysis itself).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dateutil import parser as date_parser

from calls.models import Agent
from integrations.parameters import coerce
from rules import ai
from rules.models import Conversation, MessageRole

UNKNOWN = "unknown"
SENTIMENTS = ("positive", "neutral", "negative")
MAX_TRANSCRIPT_CHARS = 40_000
MAX_SUMMARY_CHARS = 2000
SYSTEM = (
    "You analyse a finished conversation between an agent of a business and a caller. Read the transcript and "
    "answer with one JSON object matching the schema: the disposition (one of the listed values, or "
    f'"{UNKNOWN}" when none fits), a summary of two or three sentences, the caller\'s sentiment, and the '
    "extracted values (null for anything the caller did not say). Dates as YYYY-MM-DD."
)
_SPEAKERS: dict[str, str] = {MessageRole.VISITOR: "Caller", MessageRole.ASSISTANT: "Agent"}


def _value_schema(field: dict) -> dict:
    description = field.get("description") or field["name"]
    kind = field["type"]
    if kind == "enum":
        return {"type": ["string", "null"], "enum": [*field["values"], None], "description": description}
    if kind == "date":
        return {"type": ["string", "null"], "format": "date", "description": f"{description} (YYYY-MM-DD)"}
    return {"type": [kind, "null"], "description": description}


def schema(agent: Agent) -> dict:
    """The JSON Schema of the analysis answer for `agent`."""
    config = agent.analysis or {}
    fields = config.get("extract") or []
    dispositions = [*(config.get("dispositions") or []), UNKNOWN]
    extracted = {
        "type": "object",
        "properties": {f["name"]: _value_schema(f) for f in fields},
        "required": [f["name"] for f in fields],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "disposition": {"type": "string", "enum": dispositions},
            "summary": {"type": "string"},
            "sentiment": {"type": "string", "enum": list(SENTIMENTS)},
            "extracted": extracted,
        },
        "required": ["disposition", "summary", "sentiment", "extracted"],
        "additionalProperties": False,
    }


def transcript_text(conversation: Conversation) -> str:
    """The conversation as `Agent: …` / `Caller: …` lines (tools noted), its last MAX_TRANSCRIPT_CHARS."""
    lines = []
    for message in conversation.messages.order_by("created_at", "id"):
        if message.role in _SPEAKERS and message.text:
            lines.append(f"{_SPEAKERS[message.role]}: {message.text}")
        elif message.role == MessageRole.TOOL:
            lines.append(f"(tool {message.text})")
    return "\n".join(lines)[-MAX_TRANSCRIPT_CHARS:]


def analyse(conversation: Conversation, agent: Agent, provider: ai.AIProvider | None) -> dict[str, Any]:
    """The outcome of the conversation (see the module docstring); never raises for a provider failure."""
    if provider is None:
        return empty(agent, error="this agent needs an AI provider")
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Transcript:\n" + (transcript_text(conversation) or "(nobody spoke)")},
    ]
    try:
        answer = provider.structured(messages, schema(agent), name="call_analysis")
    except ai.AIError as exc:
        return empty(agent, error=str(exc))
    return coerced(agent, answer)


def empty(agent: Agent, *, error: str) -> dict[str, Any]:
    """The outcome when no analysis could be made: unknown, neutral, nothing extracted, and why."""
    fields = (agent.analysis or {}).get("extract") or []
    return {
        "disposition": UNKNOWN,
        "summary": "",
        "sentiment": "neutral",
        "extracted": {f["name"]: None for f in fields},
        "analysis_error": error,
    }


def coerced(agent: Agent, answer: dict[str, Any]) -> dict[str, Any]:
    """The model's answer made to fit: known disposition and sentiment, every extracted value typed or null."""
    config = agent.analysis or {}
    dispositions = config.get("dispositions") or []
    disposition = answer.get("disposition")
    summary = answer.get("summary")
    sentiment = answer.get("sentiment")
    extracted = answer.get("extracted")
    raw: dict[str, Any] = extracted if isinstance(extracted, dict) else {}
    return {
        "disposition": disposition if isinstance(disposition, str) and disposition in dispositions else UNKNOWN,
        "summary": summary.strip()[:MAX_SUMMARY_CHARS] if isinstance(summary, str) else "",
        "sentiment": sentiment if sentiment in SENTIMENTS else "neutral",
        "extracted": {f["name"]: typed(f, raw.get(f["name"])) for f in config.get("extract") or []},
    }


def typed(field: dict, value: Any) -> Any:
    """`value` as the field's type, or None when it is missing or cannot be one."""
    if value is None or isinstance(value, (dict, list)):
        return None
    kind = field["type"]
    if kind == "enum":
        by_fold = {v.casefold(): v for v in field["values"]}
        return by_fold.get(str(value).strip().casefold())
    if kind == "date":
        return _date(value)
    try:
        result = coerce(kind, value)
    except ValueError:
        return None
    if kind == "string":
        return result.strip() or None
    if kind == "number" and isinstance(result, float) and result != result:  # NaN is not a value
        return None
    return result


def _date(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return dt.date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        pass
    try:
        return date_parser.parse(text, default=dt.datetime(dt.date.today().year, 1, 1)).date().isoformat()
    except (ValueError, OverflowError):
        return None
