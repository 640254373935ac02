"""What the model is given: the system prompt, the tools (the agent's endpoints and the built-ins), history.

The prompt and the spoken templates render over the conversation's variables (a call's metadata) —
except the verification keys: what the caller must state to prove who they are is never shown to the
model (verify_identity compares on the server).
"""

from __future__ import annotations

import json
from typing import Any

from calls.models import Agent
from calls.tools import GUIDANCE, tool_definition
from integrations import templating
from integrations.models import Endpoint
from rules.models import Conversation, MessageRole

END_CALL = "end_call"
VERIFY_IDENTITY = "verify_identity"
BUILT_INS = (END_CALL, VERIFY_IDENTITY)
HISTORY_MESSAGES = 60
TOOL_FIELDS = (
    "id", "tenant_id", "tool_name", "name", "description", "parameters", "burden", "response_template",
    "say_on_start", "say_on_delay", "say_on_delay_seconds", "say_on_failure",
)  # fmt: skip
STYLE = (
    "You are speaking with a person in real time, as on a phone call. Speak in short, plain sentences, one or "
    "two at a time; no lists, no markdown, no emoji. Never invent facts: use your tools. When a tool result has "
    "already been spoken to the caller, do not repeat its numbers; carry on from it. When the conversation is "
    f"over, say goodbye and call {END_CALL}."
)


def template_context(conversation: Conversation, agent: Agent) -> dict[str, Any]:
    """The variables templates of the agent see: session variables minus the verification keys."""
    hidden = set(agent.verification or [])
    variables = {k: v for k, v in (conversation.variables or {}).items() if k not in hidden}
    tenant = conversation.tenant
    return {
        **variables,
        "conversation": {**conversation.template_context(), "variables": variables},
        "tenant": {"id": str(tenant.pk), "name": tenant.name, "slug": tenant.slug},
        "agent": {"name": agent.name, "agent_code": agent.agent_code, "language": agent.language},
    }


def render(template: str, context: dict[str, Any]) -> str:
    """A spoken or prompt template rendered as text; a broken template is spoken as written, never a crash."""
    if not template:
        return ""
    try:
        return templating.render(template, context).value.strip()
    except templating.TemplateError:
        return template.strip()


def agent_endpoints(agent: Agent) -> dict[str, Endpoint]:
    """The agent's endpoints by tool name; a tool named like a built-in is left out (the built-in wins)."""
    # Only what a tool definition and the burden checks read: the encrypted headers (and the
    # connection's) cost a decryption each and are loaded by invoke_tool for the one tool that runs.
    endpoints = agent.tools.only(*TOOL_FIELDS).order_by("tool_name")
    return {e.tool_name: e for e in endpoints if e.tool_name not in BUILT_INS}


def tools_for(agent: Agent, endpoints: dict[str, Endpoint]) -> list[dict[str, Any]]:
    """The tools in chat-completions form: the endpoints' definitions, then end_call and verify_identity."""
    tools = [{"type": "function", "function": tool_definition(e)["function"]} for e in endpoints.values()]
    tools.append(
        _function(
            END_CALL,
            "End the call: when the conversation is over, the caller asks to hang up, or it is the wrong person.",
            {"reason": {"type": "string", "description": "Why the call ends, in a few words"}},
            [],
        )
    )
    keys = list(agent.verification or [])
    if keys:
        properties = {
            key: {"type": "string", "description": f"The {key.replace('_', ' ')} the caller stated"} for key in keys
        }
        tools.append(
            _function(
                VERIFY_IDENTITY,
                "Verify the caller's identity with what they stated. Ask the caller for each value; never guess.",
                properties,
                keys,
            )
        )
    return tools


def _function(name: str, description: str, properties: dict, required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": schema}}


def system_prompt(agent: Agent, context: dict[str, Any], endpoints: dict[str, Endpoint]) -> str:
    """The rendered prompt, the guidance of every tool's burden level, and the spoken style."""
    parts = [render(agent.prompt, context) or f"You are {agent.name}, an assistant of {context['tenant']['name']}."]
    if agent.language:
        parts.append(f"Speak in the language {agent.language}.")
    parts.append(STYLE)
    if endpoints:
        lines = [
            f"- {name}: {(e.description or e.name).strip()} Guidance: {GUIDANCE[e.burden]}"
            for name, e in endpoints.items()
        ]
        parts.append("Your tools:\n" + "\n".join(lines))
    if agent.verification:
        parts.append(
            f"To verify the caller's identity, ask them for: {', '.join(agent.verification)}, then call "
            f"{VERIFY_IDENTITY}. Tools that need a verified caller are refused until it succeeds."
        )
    return "\n\n".join(parts)


def history(conversation: Conversation) -> list[dict[str, Any]]:
    """The conversation so far in chat-completions form; a round of tool calls becomes one assistant message."""
    recent = list(conversation.messages.order_by("-created_at", "-id")[:HISTORY_MESSAGES])
    recent.reverse()
    messages: list[dict[str, Any]] = []
    pending_calls: list[dict] = []
    pending_results: list[dict] = []

    def flush() -> None:
        if pending_calls:
            messages.append({"role": "assistant", "content": None, "tool_calls": list(pending_calls)})
            messages.extend(pending_results)
            pending_calls.clear()
            pending_results.clear()

    for message in recent:
        data = message.data or {}
        if message.role == MessageRole.TOOL and data.get("tool_call_id"):
            call_id = data["tool_call_id"]
            arguments = json.dumps(data.get("arguments") or {}, ensure_ascii=False)
            pending_calls.append(
                {"id": call_id, "type": "function", "function": {"name": data["tool"], "arguments": arguments}}
            )
            pending_results.append({"role": "tool", "tool_call_id": call_id, "content": _past_result(data)})
            continue
        flush()
        if message.role == MessageRole.VISITOR:
            messages.append({"role": "user", "content": message.text})
        elif message.role == MessageRole.ASSISTANT and message.text:
            messages.append({"role": "assistant", "content": message.text})
    flush()
    return messages


def _past_result(data: dict) -> str:
    shown = {k: data.get(k) for k in ("status", "status_code", "error", "say", "result") if data.get(k) is not None}
    return json.dumps(shown, ensure_ascii=False, default=str)
