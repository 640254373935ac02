"""Validation of an agent's runtime settings (SPEC §14), shared by the REST serializer and the admin form.

Each `clean_*` returns the normalised value or raises django's ValidationError with one clear sentence;
the serializer and the admin turn that into a 400 / a form error.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

from integrations import templating

EXTRACT_TYPES = ("string", "number", "integer", "boolean", "date", "enum")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_DISPOSITIONS = 50
MAX_EXTRACT = 50
MAX_ENUM_VALUES = 100
MAX_TEXT = 500
MAX_VERIFICATION_KEYS = 10
MAX_TURNS = 500
MAX_DURATION_SECONDS = 4 * 3600


def clean_analysis(value: Any) -> dict:
    """`{"dispositions": [unique names], "extract": [{"name", "type", "description", "values"?}]}`."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise ValidationError("analysis must be an object with dispositions and extract")
    unknown = sorted(set(value) - {"dispositions", "extract"})
    if unknown:
        raise ValidationError(f"unknown key(s) in analysis: {', '.join(unknown)}")
    clean: dict[str, Any] = {}
    if value.get("dispositions") is not None:
        clean["dispositions"] = _names(value["dispositions"], "analysis.dispositions", MAX_DISPOSITIONS, pattern=False)
    if value.get("extract") is not None:
        clean["extract"] = _extract(value["extract"])
    return clean


def _names(items: Any, where: str, limit: int, *, pattern: bool) -> list[str]:
    if not isinstance(items, list) or not all(isinstance(item, str) and item.strip() for item in items):
        raise ValidationError(f"{where} must be a list of non-empty strings")
    names = [item.strip() for item in items]
    if len(names) > limit or any(len(name) > 100 for name in names):
        raise ValidationError(f"{where} holds at most {limit} names of at most 100 characters")
    if pattern and not all(NAME.match(name) for name in names):
        raise ValidationError(f"{where}: names are letters, digits and underscores, not starting with a digit")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValidationError(f"{where} repeats {', '.join(repeated)}")
    return names


def _extract(items: Any) -> list[dict]:
    if not isinstance(items, list):
        raise ValidationError("analysis.extract must be a list of fields")
    if len(items) > MAX_EXTRACT:
        raise ValidationError(f"analysis.extract holds at most {MAX_EXTRACT} fields")
    fields = [_extract_field(n, item) for n, item in enumerate(items, start=1)]
    names = [f["name"] for f in fields]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValidationError(f"analysis.extract: duplicate field name(s): {', '.join(repeated)}")
    return fields


def _extract_field(number: int, item: Any) -> dict:
    where = f"analysis.extract[{number}]"
    if not isinstance(item, dict):
        raise ValidationError(f"{where} must be an object with name, type and description")
    unknown = sorted(set(item) - {"name", "type", "description", "values"})
    if unknown:
        raise ValidationError(f"{where}: unknown key(s): {', '.join(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ValidationError(f"{where}: name must be letters, digits and underscores, not starting with a digit")
    kind = item.get("type", "string")
    if kind not in EXTRACT_TYPES:
        raise ValidationError(f"{where} ({name}): unknown type {kind!r}; choose one of {', '.join(EXTRACT_TYPES)}")
    description = item.get("description") or ""
    if not isinstance(description, str) or len(description) > MAX_TEXT:
        raise ValidationError(f"{where} ({name}): description must be text of at most {MAX_TEXT} characters")
    field = {"name": name, "type": kind, "description": description}
    if kind == "enum":
        values = item.get("values")
        if not values:
            raise ValidationError(f"{where} ({name}): an enum needs a non-empty list of values")
        field["values"] = _names(values, f"{where} ({name}) values", MAX_ENUM_VALUES, pattern=False)
    elif item.get("values") is not None:
        raise ValidationError(f"{where} ({name}): values are only for the enum type")
    return field


def clean_verification(value: Any, *, input_fields: list[str] | None = None) -> list[str]:
    """The metadata keys a caller must state; each must be a metadata key of the agent's input_schema."""
    if value in (None, ""):
        return []
    keys = _names(value, "verification", MAX_VERIFICATION_KEYS, pattern=True)
    if input_fields is not None:
        missing = [key for key in keys if key not in input_fields]
        if missing:
            raise ValidationError(
                f"verification keys must be among input_schema.fields (the metadata every call carries): "
                f"{', '.join(missing)}"
            )
    return keys


def clean_template(value: Any, field: str) -> str:
    """A template field (prompt, first_message, end_call_message): its syntax is checked at save time."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be text")
    try:
        templating.validate(value)
    except templating.TemplateError as exc:
        raise ValidationError(f"{field}: {exc}") from None
    return value


def clean_bound(value: Any, field: str, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValidationError(f"{field} must be a whole number between 1 and {maximum}")
    return value
