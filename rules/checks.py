"""The checks a rule runs on itself: its trigger (`parse_trigger`, also the API's) and one action row
(`action_errors`, the admin's inline), below the models so that `Rule.clean()` and `RuleAction.clean()`
need no import back up. `rules.definitions`, the rules' validation module, builds on them and is what
callers import.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist, ValidationError

from integrations import templating
from rules import patterns
from rules.choices import ActionType, OnError, TriggerType

__all__ = ["TRIGGER_KEYS", "action_errors", "parse_trigger", "regex_fields"]

TRIGGER_KEYS = {
    TriggerType.REGEX: {"type", "pattern", "flags"},
    TriggerType.AI: {"type", "condition"},
    TriggerType.ALWAYS: {"type"},
}


def parse_trigger(data: Any) -> dict[str, str]:
    """`{"type": "regex", "pattern": ..., "flags": "i"}` | `{"type": "ai", "condition": ...}` | `{"type": "always"}`.

    Returns the model fields (`trigger_type`, `pattern`, `flags`, `condition`); a `/pattern/flags`
    literal is split into pattern and flags.
    """
    if not isinstance(data, dict):
        raise ValidationError("must be an object with a type: regex, ai or always")
    kind = data.get("type")
    if kind not in TRIGGER_KEYS:
        raise ValidationError("type must be one of: regex, ai, always")
    unknown = sorted(set(data) - TRIGGER_KEYS[kind])
    if unknown:
        raise ValidationError(f"unknown key(s) for a {kind} trigger: {', '.join(unknown)}")
    fields = {"trigger_type": kind, "pattern": "", "flags": "", "condition": ""}
    if kind == TriggerType.REGEX:
        fields.update(regex_fields(data.get("pattern"), data.get("flags", "")))
    elif kind == TriggerType.AI:
        condition = data.get("condition")
        if not isinstance(condition, str) or not condition.strip():
            raise ValidationError("an ai trigger needs a condition (what must be true of the message)")
        fields["condition"] = condition.strip()
    return fields


def regex_fields(pattern: Any, flags: Any) -> dict[str, str]:
    if not isinstance(pattern, str) or not pattern:
        raise ValidationError("a regex trigger needs a pattern")
    if not isinstance(flags, str):
        raise ValidationError("flags must be a string such as 'i' or 'ims'")
    try:
        parsed = patterns.validate(pattern, flags)
    except patterns.PatternError as exc:
        raise ValidationError(f"pattern refused: {exc}") from None
    return {"pattern": parsed.pattern, "flags": parsed.flags}


def action_errors(action: Any) -> dict[str, list[str]]:
    """Field errors of one action row (a `RuleAction`, from the admin's inline form), by the same rules
    as the API. Typed loosely: this module sits below the models and cannot name them."""
    errors: dict[str, list[str]] = {}
    if action.type == ActionType.CALL_API:
        rule = _rule_of(action)
        if action.endpoint_id is None:
            errors["endpoint"] = ["A CALL_API action needs an endpoint."]
        elif rule is not None and rule.tenant_id and action.endpoint and action.endpoint.tenant_id != rule.tenant_id:
            errors["endpoint"] = ["Unknown endpoint."]
        if not isinstance(action.params, dict):
            errors["params"] = ["Parameters must be an object of name → template."]
    elif action.type == ActionType.SET_VARIABLE and not action.variable.isidentifier():
        errors["variable"] = ["A variable name (letters, digits, underscore) is required."]
    elif action.type == ActionType.REPLY_TEXT and not action.template.strip():
        errors["template"] = ["A reply template is required."]
    for name in ("value", "template"):
        try:
            templating.validate(getattr(action, name) or "")
        except templating.TemplateError as exc:
            errors.setdefault(name, []).append(str(exc))
    if action.parent is not None and action.parent.on_error != OnError.BRANCH:
        errors["parent"] = ['Branch actions belong to a CALL_API action whose on_error is "branch".']
    return errors


def _rule_of(action: Any) -> Any:
    # In the admin's inline the rule may be new (unsaved) but already carries the chosen tenant.
    try:
        return action.rule
    except ObjectDoesNotExist:
        return None
