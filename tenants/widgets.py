"""Structured editors for the admin's JSON fields: rows you add and remove instead of a raw JSON box.

The widget is still the JSON textarea: `static/structured/editor.js` hides it, draws rows from its JSON
and writes the rows back into it on every edit, so the form submits (and the app's one validation module
checks) exactly the JSON the API takes. Without the script the textarea stays and works as before.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms


def text(key: str, label: str, placeholder: str = "") -> dict[str, Any]:
    return {"key": key, "label": label, "type": "text", "placeholder": placeholder}


def select(key: str, label: str, choices: list[str] | tuple[str, ...]) -> dict[str, Any]:
    return {"key": key, "label": label, "type": "select", "choices": list(choices)}


def checkbox(key: str, label: str) -> dict[str, Any]:
    return {"key": key, "label": label, "type": "checkbox"}


def json_value(key: str, label: str, placeholder: str = "") -> dict[str, Any]:
    """A cell read as JSON when it parses (`3`, `true`, `["a", "b"]`), else as text."""
    return {"key": key, "label": label, "type": "json", "placeholder": placeholder}


class StructuredJSONWidget(forms.Textarea):
    """`kind="map"`: rows of name → value (an object). `kind="list"`: rows of objects, one column per key
    (keys the columns do not show are kept as they were). `kind="strings"`: a list of strings.
    `kind="object"`: an object whose `sections` (see `section`) are each edited as one of those."""

    def __init__(
        self,
        *,
        kind: str,
        columns: list[dict[str, Any]] | None = None,
        sections: list[dict[str, Any]] | None = None,
        add_label: str = "Add a row",
        label: str = "Value",
        attrs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(attrs={"rows": 4, **(attrs or {})})
        self.spec: dict[str, Any] = _spec(kind, columns, sections, add_label, label)

    def set_placeholders(self, placeholders: dict[str, str]) -> None:
        """Per-name hints in the value cells (a write-only map shows what is stored, masked)."""
        self.spec = {**self.spec, "placeholders": placeholders}

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        widget_attrs = context["widget"]["attrs"]
        widget_attrs["class"] = f"{widget_attrs.get('class', '')} structured-json".strip()
        widget_attrs["data-structured"] = json.dumps(self.spec, ensure_ascii=False)
        return context

    def format_value(self, value):
        # forms.JSONField hands over its JSON text already; a CharField (write-only maps) a dict or text.
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        return super().format_value(value)

    class Media:
        js = ["structured/editor.js"]
        css = {"all": ["structured/editor.css"]}


def _spec(kind: str, columns, sections, add_label: str, label: str) -> dict[str, Any]:
    if kind == "object":
        if not sections or columns:
            raise ValueError("an object is edited by its sections")
        return {"kind": kind, "sections": sections}
    if kind not in ("map", "list", "strings"):
        raise ValueError(f"unknown kind {kind!r}: map, list, strings or object")
    if kind == "map" and len(columns or []) != 2:
        raise ValueError("a map has two columns (name, value)")
    if kind == "list" and not columns:
        raise ValueError("a list has one column per key")
    return {"kind": kind, "columns": columns or [], "addLabel": add_label, "label": label}


def section(key: str, label: str, widget: StructuredJSONWidget) -> dict[str, Any]:
    """One key of an "object" editor, edited like `widget` (a map, list or strings widget)."""
    return {**widget.spec, "key": key, "title": label}


def template_map(name_label: str, value_label: str = "Template", *, placeholder: str = "") -> StructuredJSONWidget:
    """Rows of name → template (query parameters, headers, an action's params)."""
    return StructuredJSONWidget(
        kind="map",
        columns=[text("name", name_label), text("value", value_label, placeholder)],
        add_label=f"Add a {name_label.lower()}",
    )
