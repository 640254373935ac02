"""Agent tools (SPEC §8): an agent's endpoints as AI function-calling tools, and invoking one.

- `list_tools(agent)` — the agent's endpoints in OpenAI function-calling form, each with its context
  burden, the one-sentence guidance the agent follows for that level, and its voice messages.
- `invoke_tool(tenant, tool_name, conversation, arguments, confirmed, ctx)` — validate the arguments
  against the endpoint's declared parameters, enforce the burden level on the server, run the endpoint
  through the executor (trigger `tool`), log it in the conversation as a `tool` message, and return the
  result (SPEC §4 shape) plus what to `say`.

Burden levels are enforced here, not left to the model: a `confirmed` tool runs only with
`confirmed=true` (else `ToolRefused`, code `conflict`, with a confirmation prompt), a `verified` tool only
in a conversation whose caller's identity is verified (else code `forbidden`). Nothing is sent when a tool is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from calls.models import Agent, Call
from integrations import executor, templating
from integrations.models import Burden, Endpoint, Trigger
from integrations.parameters import ParameterError, coerce, json_schema, validate_arguments
from integrations.redaction import SENSITIVE_NAME, Redactor
from rules import services as conversations
from rules.models import Conversation
from tenants import scoping
from tenants.errors import DomainError, ErrorCode
from tenants.models import Tenant
from tenants.secrets import MASK

GUIDANCE: dict[str, str] = {
    Burden.AMBIENT: "Use this tool silently in the background whenever it helps; never mention it to the caller.",
    Burden.CONVERSATIONAL: (
        'Use this tool naturally in the conversation and tell the caller what you are doing, such as "Let me check '
        'that for you."'
    ),
    Burden.REQUESTED: "Use this tool only when the caller explicitly asks for what it does.",
    Burden.CONFIRMED: (
        "Before using this tool, read back exactly what you will do and ask the caller for explicit confirmation; "
        "only after they confirm, call it with confirmed=true."
    ),
    Burden.VERIFIED: "Use this tool only after the caller's identity has been verified in this conversation.",
}
DEFAULT_SAY_DELAY = 3
CONFIRMED_ARGUMENT = "confirmed"
CONFIRMED_SCHEMA = {
    "type": "boolean",
    "description": "Set to true only after the caller has explicitly confirmed this action.",
}


class ToolRefused(DomainError):
    """The tool did not run: a code (`invalid`, `forbidden`, `conflict`), the message and extra fields."""


@dataclass
class ToolOutcome:
    """One invocation: the executor's result, what to say, and the `tool` message logged for it."""

    result: executor.ExecutionResult
    say: str | None
    message_id: Any

    def to_dict(self) -> dict[str, Any]:
        return {**self.result.to_dict(), "say": self.say}


# --- the listing -----------------------------------------------------------------------------------


def tool_definition(endpoint: Endpoint) -> dict[str, Any]:
    """One endpoint as a tool: OpenAI's `{"type": "function", "function": {...}}` plus burden, guidance, voice."""
    parameters = json_schema(endpoint)
    if takes_confirmation_argument(endpoint):
        parameters["properties"][CONFIRMED_ARGUMENT] = dict(CONFIRMED_SCHEMA)
    return {
        "type": "function",
        "function": {
            "name": endpoint.tool_name,
            "description": endpoint.description or endpoint.name,
            "parameters": parameters,
        },
        "burden": endpoint.burden,
        "guidance": GUIDANCE[endpoint.burden],
        "voice": voice_messages(endpoint),
    }


def voice_messages(endpoint: Endpoint) -> dict[str, Any]:
    """What a voice agent says around the call: `on_start`, `on_delay` (after N seconds), `on_failure`."""
    delay = None
    if endpoint.say_on_delay:
        delay = {"after_seconds": endpoint.say_on_delay_seconds or DEFAULT_SAY_DELAY, "say": endpoint.say_on_delay}
    return {"on_start": endpoint.say_on_start or None, "on_delay": delay, "on_failure": endpoint.say_on_failure or None}


def list_tools(agent: Agent) -> list[dict[str, Any]]:
    """The agent's tools, by tool name."""
    return [tool_definition(endpoint) for endpoint in agent.tools.order_by("tool_name")]


# --- invoking --------------------------------------------------------------------------------------


def invoke_tool(
    tenant: Tenant,
    tool_name: str,
    conversation: Conversation,
    arguments: dict | None,
    confirmed: bool = False,
    ctx: Any = None,
    *,
    log_data: dict | None = None,
) -> ToolOutcome:
    """Run the tenant's tool `tool_name` in `conversation`, the burden level enforced; see the module doc.

    Raises NotFound for a tool name the tenant does not have, `ToolRefused` when the tool may not run
    (`invalid` arguments; `forbidden`: unverified caller or a tool the call's agent does not have;
    `conflict`: not confirmed). `ctx` (a TenantContext) is recorded as who triggered the call; `log_data` (no secrets)
    is added to the logged `tool` message (the agent runtime keeps the model's tool-call id there).
    """
    endpoint = scoping.get_for_tenant(Endpoint.objects.for_execution(), tenant, tool_name=tool_name)
    if conversation.tenant_id != tenant.pk:
        raise ValueError("the conversation belongs to another tenant")
    arguments = dict(arguments or {})
    if takes_confirmation_argument(endpoint) and CONFIRMED_ARGUMENT in arguments:
        confirmed = _confirmation_flag(arguments.pop(CONFIRMED_ARGUMENT)) or confirmed
    values = _validated(endpoint, arguments)
    _check_agent_may_use(endpoint, conversation)
    _check_burden(endpoint, conversation, values, confirmed)
    result = executor.execute(
        endpoint, params=values, trigger=Trigger.TOOL, conversation=conversation.template_context(), actor=ctx
    )
    redactor = result.request.redactor if result.request else Redactor()
    say = _say(endpoint, result, conversation, values)
    say = redactor.text(say) if say is not None else None
    message = conversations.record_tool_message(
        conversation,
        text=f"{endpoint.tool_name}: {result.status}",
        data={
            "tool": endpoint.tool_name,
            "arguments": redact_arguments(values, redactor),
            "confirmed": confirmed,
            "status": result.status,
            "status_code": result.status_code,
            "error": redactor.text(result.error) if result.error else None,
            "say": say,
            "api_call_log_id": str(result.log_id) if result.log_id else None,
            **(log_data or {}),
        },
    )
    return ToolOutcome(result=result, say=say, message_id=message.pk)


def takes_confirmation_argument(endpoint: Endpoint) -> bool:
    # A model can only answer with arguments, so a `confirmed` tool also accepts the flag among them
    # (unless the endpoint declares a parameter of that name itself).
    declared = {param.get("name") for param in endpoint.parameters or []}
    return endpoint.burden == Burden.CONFIRMED and CONFIRMED_ARGUMENT not in declared


def _confirmation_flag(value: Any) -> bool:
    try:
        return coerce("boolean", value)
    except ValueError:
        message = f"parameter {CONFIRMED_ARGUMENT} must be a boolean"
        raise ToolRefused(f"arguments: {message}", details={"arguments": [message]}) from None


def _validated(endpoint: Endpoint, arguments: dict) -> dict:
    try:
        return validate_arguments(endpoint, arguments, allow_extra=False)
    except ParameterError as exc:
        raise ToolRefused(f"arguments: {exc.messages[0]}", details={"arguments": exc.messages}) from None


def _check_agent_may_use(endpoint: Endpoint, conversation: Conversation) -> None:
    call = Call.objects.filter(conversation=conversation).select_related("agent").first()
    if call is not None and not call.agent.tools.filter(pk=endpoint.pk).exists():
        raise ToolRefused(
            f"Tool {endpoint.tool_name} is not one of the tools of this call's agent", code=ErrorCode.FORBIDDEN
        )


def _check_burden(endpoint: Endpoint, conversation: Conversation, values: dict, confirmed: bool) -> None:
    if endpoint.burden == Burden.VERIFIED and not conversation.identity_verified:
        raise ToolRefused(
            f"Tool {endpoint.tool_name} requires the caller's identity to be verified in this conversation first",
            code=ErrorCode.FORBIDDEN,
        )
    if endpoint.burden == Burden.CONFIRMED and not confirmed:
        shown = redact_arguments(values, Redactor())
        raise ToolRefused(
            "Confirmation required",
            code=ErrorCode.CONFLICT,
            confirmation_prompt=confirmation_prompt(endpoint, shown),
            tool=endpoint.tool_name,
            arguments=shown,
        )


def confirmation_prompt(endpoint: Endpoint, arguments: dict) -> str:
    """`Please confirm: <what the tool does> with <name>=<value>, …` (arguments already redacted)."""
    action = (endpoint.description or endpoint.name).strip().rstrip(".")
    if not arguments:
        return f"Please confirm: {action}."
    listed = ", ".join(f"{name}={_shown(value)}" for name, value in arguments.items())
    return f"Please confirm: {action} with {listed}."


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def redact_arguments(values: Any, redactor: Redactor) -> Any:
    """Arguments fit to store or show: secret-looking names masked, and any known secret value."""
    if isinstance(values, dict):
        return {
            name: MASK if SENSITIVE_NAME.search(str(name)) else redact_arguments(value, redactor)
            for name, value in values.items()
        }
    if isinstance(values, list):
        return [redact_arguments(value, redactor) for value in values]
    return redactor.data(values)


def _say(endpoint: Endpoint, result: executor.ExecutionResult, conversation: Conversation, values: dict) -> str | None:
    """The rendered response template; on a non-success result the endpoint's `say_on_failure` if set."""
    if not result.ok and endpoint.say_on_failure:
        context = dict(result.request.context) if result.request else {**(conversation.variables or {}), **values}
        context.update(status=result.status, status_code=result.status_code, error=result.error or "")
        try:
            return templating.render(endpoint.say_on_failure, context).value
        except templating.TemplateError:
            return endpoint.say_on_failure
    if endpoint.response_template and result.status_code is not None:
        return result.say
    return None
