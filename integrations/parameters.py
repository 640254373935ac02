"""Declared endpoint parameters: save-time validation, call-time coercion, and the AI tool's JSON Schema.

A parameter is `{"name", "location", "type", "description", "required", "default", "enum", "example"}`;
`location` is where the executor puts it when no template mentions it (`path` must be used in the path).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from integrations.models import Endpoint

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOCATIONS = ("path", "query", "header", "body")
TYPES = ("string", "number", "integer", "boolean", "object", "array")
KEYS = ("name", "location", "type", "description", "required", "default", "enum", "example")
TRUE_WORDS = {"true", "1", "yes", "on"}
FALSE_WORDS = {"false", "0", "no", "off"}


class ParameterError(Exception):
    """Arguments do not fit the declaration; `missing` names the absent required parameters."""

    def __init__(self, messages: list[str], missing: list[str] | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages
        self.missing = missing or []


def clean_declarations(value: Any) -> tuple[list[dict], list[str]]:
    """Normalised declarations and a list of problems (`parameters[1].type: ...`), empty when valid."""
    if value in (None, ""):
        return [], []
    if not isinstance(value, list):
        return [], ["must be a list of parameter objects"]
    cleaned, problems, seen = [], [], set()
    for index, item in enumerate(value):
        where = f"parameters[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object")
            continue
        param, errors = _clean_one(item)
        problems.extend(f"{where}.{error}" for error in errors)
        if param["name"] in seen:
            problems.append(f"{where}.name: duplicate parameter {param['name']!r}")
        seen.add(param["name"])
        cleaned.append(param)
    return cleaned, problems


def _clean_one(item: dict) -> tuple[dict, list[str]]:
    errors = [f"{key}: unknown key" for key in item if key not in KEYS]
    param = {
        "name": item.get("name"),
        "location": item.get("location") or "query",
        "type": item.get("type") or "string",
        "description": item.get("description") or "",
        "required": item.get("required", False),
        "default": item.get("default"),
        "enum": item.get("enum"),
        "example": item.get("example"),
    }
    if not isinstance(param["name"], str) or not NAME.match(param["name"]):
        errors.append("name: must be an identifier (letters, digits, underscore)")
        param["name"] = str(param["name"])
    if param["location"] not in LOCATIONS:
        errors.append(f"location: must be one of {', '.join(LOCATIONS)}")
    if param["type"] not in TYPES:
        errors.append(f"type: must be one of {', '.join(TYPES)}")
        return param, errors
    if not isinstance(param["description"], str):
        errors.append("description: must be a string")
    if not isinstance(param["required"], bool):
        errors.append("required: must be true or false")
    if param["enum"] is not None:
        if not isinstance(param["enum"], list) or not param["enum"]:
            errors.append("enum: must be a non-empty list")
        else:
            for value in param["enum"]:
                try:
                    coerce(param["type"], value)
                except ValueError as exc:
                    errors.append(f"enum: {value!r} {exc}")
    for key in ("default", "example"):
        if param[key] is not None:
            try:
                param[key] = coerce(param["type"], param[key])
            except ValueError as exc:
                errors.append(f"{key}: {exc}")
    if param["default"] is not None and param["enum"] and param["default"] not in param["enum"]:
        errors.append("default: must be one of the enum values")
    return param, errors


def coerce(kind: str, value: Any) -> Any:
    """`value` as declared type `kind`; ValueError with a short reason when it cannot be."""
    if kind == "string":
        if isinstance(value, (dict, list)):
            raise ValueError("must be a string")
        return value if isinstance(value, str) else json.dumps(value) if isinstance(value, bool) else str(value)
    if kind == "boolean":
        return _boolean(value)
    if kind == "integer":
        return _integer(value)
    if kind == "number":
        return _number(value)
    expected = dict if kind == "object" else list
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(f"must be an {kind}" if kind == "object" else "must be an array") from None
    if not isinstance(value, expected):
        raise ValueError("must be an object" if kind == "object" else "must be an array")
    return value


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("must be a boolean")


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise ValueError("must be an integer")


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ValueError("must be a number") from None
        if number == number and abs(number) != float("inf"):
            return int(number) if re.fullmatch(r"\s*[-+]?\d+\s*", value) else number
    raise ValueError("must be a number")


def validate_arguments(endpoint: Endpoint, args: dict | None, *, allow_extra: bool = True) -> dict:
    """The arguments coerced to their declared types, defaults applied; raises `ParameterError`.

    Undeclared arguments pass through unchanged unless `allow_extra` is False (AI tool calls).
    """
    args = dict(args or {})
    values: dict[str, Any] = {}
    messages: list[str] = []
    missing: list[str] = []
    for param in endpoint.parameters or []:
        name = param["name"]
        value = args.pop(name, None)
        if value is None or value == "":
            if param.get("default") is not None:
                values[name] = param["default"]
            elif param.get("required"):
                missing.append(name)
            continue
        try:
            value = coerce(param.get("type") or "string", value)
        except ValueError as exc:
            messages.append(f"parameter {name} {exc}")
            continue
        if param.get("enum") and value not in param["enum"]:
            messages.append(f"parameter {name} must be one of: {', '.join(map(str, param['enum']))}")
            continue
        values[name] = value
    if missing:
        messages.insert(0, f"missing required parameter{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    if args and not allow_extra:
        messages.append(f"unknown argument{'s' if len(args) > 1 else ''}: {', '.join(sorted(args))}")
    if messages:
        raise ParameterError(messages, missing)
    return {**args, **values}


def json_schema(endpoint: Endpoint) -> dict:
    """The JSON Schema of the endpoint's parameters (the `parameters` of an AI function/tool)."""
    properties: dict[str, dict] = {}
    required: list[str] = []
    for param in endpoint.parameters or []:
        schema: dict[str, Any] = {"type": param.get("type") or "string"}
        if param.get("description"):
            schema["description"] = param["description"]
        if param.get("enum"):
            schema["enum"] = param["enum"]
        if param.get("default") is not None:
            schema["default"] = param["default"]
        if param.get("example") is not None:
            schema["examples"] = [param["example"]]
        properties[param["name"]] = schema
        if param.get("required"):
            required.append(param["name"])
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
