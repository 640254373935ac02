"""The public shapes of a rule's `trigger` and `actions` (SPEC §13), validated and turned into rows.

Shared by the REST API and the admin, so both refuse the same things with the same messages.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from integrations import templating
from integrations.models import Endpoint
from rules import agents
from rules.checks import TRIGGER_KEYS, parse_trigger
from rules.models import ActionType, OnError, Rule, RuleAction
from tenants import scoping
from tenants.errors import NotFound

__all__ = [
    "ACTION_KEYS",
    "TRIGGER_KEYS",
    "describe_actions",
    "parse_actions",
    "parse_trigger",
    "replace_actions",
    "save_rule",
]

ACTION_KEYS = {
    ActionType.CALL_API: {"type", "endpoint", "params", "on_error", "branch"},
    ActionType.SET_VARIABLE: {"type", "name", "value"},
    ActionType.REPLY_TEXT: {"type", "template"},
    ActionType.REPLY_AI: {"type", "instructions", "agent"},
}
MAX_ACTIONS = 50
MAX_BRANCH_DEPTH = 3


def parse_actions(data: Any, tenant, *, depth: int = 0) -> list[dict]:
    """Validate an ordered action list; endpoints must belong to `tenant` (else "unknown endpoint")."""
    if not isinstance(data, list):
        raise ValidationError("must be a list of actions")
    if len(data) > MAX_ACTIONS:
        raise ValidationError(f"at most {MAX_ACTIONS} actions")
    return [_parse_action(item, tenant, index, depth) for index, item in enumerate(data, start=1)]


def _parse_action(item: Any, tenant, index: int, depth: int) -> dict:
    where = f"action {index}"
    if not isinstance(item, dict) or item.get("type") not in ACTION_KEYS:
        raise ValidationError(f"{where}: type must be one of: {', '.join(ACTION_KEYS)}")
    kind = item["type"]
    unknown = sorted(set(item) - ACTION_KEYS[kind])
    if unknown:
        raise ValidationError(f"{where} ({kind}): unknown key(s): {', '.join(unknown)}")
    try:
        return {"type": kind, **_ACTION_PARSERS[kind](item, tenant, depth)}
    except ValidationError as exc:
        raise ValidationError(f"{where} ({kind}): {'; '.join(exc.messages)}") from None


def _call_api(item: dict, tenant, depth: int) -> dict:
    endpoint = _endpoint(item.get("endpoint"), tenant)
    params = item.get("params", {}) or {}
    if not isinstance(params, dict):
        raise ValidationError("params must be an object of parameter name → template")
    for name, value in params.items():
        if isinstance(value, str):
            _template(value, f"params.{name}")
    on_error = item.get("on_error", OnError.CONTINUE)
    if on_error not in OnError.values:
        raise ValidationError(f"on_error must be one of: {', '.join(OnError.values)}")
    branch = item.get("branch") or []
    if branch and on_error != OnError.BRANCH:
        raise ValidationError('branch actions need "on_error": "branch"')
    if on_error == OnError.BRANCH:
        if not branch:
            raise ValidationError('"on_error": "branch" needs a non-empty branch list')
        if depth + 1 >= MAX_BRANCH_DEPTH:
            raise ValidationError(f"branches nest at most {MAX_BRANCH_DEPTH} levels deep")
        branch = parse_actions(branch, tenant, depth=depth + 1)
    return {"endpoint": endpoint, "params": params, "on_error": on_error, "branch": branch}


def _endpoint(value: Any, tenant) -> Endpoint:
    if value in (None, ""):
        raise ValidationError("endpoint is required")
    try:
        return scoping.get_for_tenant(Endpoint, tenant, pk=str(value))
    except NotFound:
        raise ValidationError(f"unknown endpoint {value}") from None


def _set_variable(item: dict, tenant, depth: int) -> dict:
    name = item.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValidationError("name must be a variable name (letters, digits, underscore)")
    value = item.get("value", "")
    if not isinstance(value, str):
        raise ValidationError("value must be a template string")
    _template(value, "value")
    return {"name": name, "value": value}


def _reply_text(item: dict, tenant, depth: int) -> dict:
    template = item.get("template")
    if not isinstance(template, str) or not template.strip():
        raise ValidationError("template is required")
    _template(template, "template")
    return {"template": template}


def _reply_ai(item: dict, tenant, depth: int) -> dict:
    instructions = item.get("instructions", "")
    if not isinstance(instructions, str):
        raise ValidationError("instructions must be a string")
    parsed: dict[str, Any] = {"instructions": instructions}
    if item.get("agent") is not None:
        try:
            agents.agent_runtime().check_agent(tenant, item["agent"], need_provider=False)
        except agents.AgentError as exc:
            raise ValidationError(f"agent: {exc.message}") from None
        parsed["agent"] = str(item["agent"])
    return parsed


_ACTION_PARSERS = {
    ActionType.CALL_API: _call_api,
    ActionType.SET_VARIABLE: _set_variable,
    ActionType.REPLY_TEXT: _reply_text,
    ActionType.REPLY_AI: _reply_ai,
}


def _template(template: str, label: str) -> None:
    try:
        templating.validate(template)
    except templating.TemplateError as exc:
        raise ValidationError(f"{label}: {exc}") from None


@transaction.atomic
def save_rule(rule: Rule, fields: dict[str, Any], actions: list[dict] | None) -> Rule:
    """Save `rule` with `fields` set (a parsed trigger among them) and, unless None, replace its actions
    with parsed `actions` — in one transaction, so a failure never leaves a rule without its actions."""
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.save()
    if actions is not None:
        replace_actions(rule, actions)
    return rule


@transaction.atomic
def replace_actions(rule: Rule, actions: list[dict]) -> None:
    """Replace the rule's actions with parsed `actions` (from `parse_actions`)."""
    rule.actions.all().delete()
    _create_actions(rule, actions, parent=None)


def _create_actions(rule: Rule, actions: list[dict], parent: RuleAction | None) -> None:
    for position, spec in enumerate(actions):
        row = RuleAction.objects.create(
            tenant_id=rule.tenant_id,
            rule=rule,
            parent=parent,
            position=position,
            type=spec["type"],
            endpoint=spec.get("endpoint"),
            params=spec.get("params", {}),
            on_error=spec.get("on_error", OnError.CONTINUE),
            variable=spec.get("name", ""),
            value=spec.get("value", ""),
            template=spec.get("template", ""),
            instructions=spec.get("instructions", ""),
            agent_id=spec.get("agent"),
        )
        if spec.get("branch"):
            _create_actions(rule, spec["branch"], parent=row)


def describe_actions(rule: Rule) -> list[dict]:
    """The rule's actions in the API's shape (the inverse of `parse_actions`)."""
    rows = list(rule.actions.all())
    children: dict[Any, list[RuleAction]] = {}
    for row in rows:
        children.setdefault(row.parent_id, []).append(row)

    def shape(row: RuleAction) -> dict:
        if row.type == ActionType.CALL_API:
            data = {
                "type": row.type,
                "endpoint": str(row.endpoint_id) if row.endpoint_id else None,
                "params": row.params or {},
                "on_error": row.on_error,
            }
            if row.on_error == OnError.BRANCH:
                data["branch"] = [shape(child) for child in _ordered(children.get(row.id, []))]
            return data
        if row.type == ActionType.SET_VARIABLE:
            return {"type": row.type, "name": row.variable, "value": row.value}
        if row.type == ActionType.REPLY_TEXT:
            return {"type": row.type, "template": row.template}
        if row.agent_id:
            return {"type": row.type, "instructions": row.instructions, "agent": str(row.agent_id)}
        return {"type": row.type, "instructions": row.instructions}

    return [shape(row) for row in _ordered(children.get(None, []))]


def _ordered(rows: list[RuleAction]) -> list[RuleAction]:
    return sorted(rows, key=lambda row: (row.position, str(row.id)))
