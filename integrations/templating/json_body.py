"""JSON body templates: values are JSON-encoded where they land, and the result is always valid JSON.

Two ways a body template is read, chosen by whether the template itself parses as JSON:

* **Structural** (the template is valid JSON, e.g. `{"name": "{{name}}", "qty": "{{qty}}"}`): the JSON
  is parsed first, then every string in it — keys and values — is rendered as a template on its own.
  A string value that is exactly one expression (`"{{qty}}"`, `"{qty}"`, `"{{lookup a b}}"`) takes the
  value with its JSON type (number, boolean, object, array, null; a missing variable gives null); any
  other string stays a string. Rendered text is put into the parsed structure, never parsed or
  rendered again, so a value with quotes, braces, newlines or `{{x}}` in it is just text.
* **Text** (anything else, e.g. `{"qty": {{qty}}}` or items generated with `{{#each}}`): the template is
  rendered as text in which each value is JSON-encoded for its place — string-escaped inside a JSON
  string, a complete JSON value (`"text"`, `5`, `{"a":1}`, `null`) outside one — and the result must
  parse as JSON, else TemplateError. A value can never close a string or add a key.

A blank template renders to None (no body).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from .errors import TemplateError
from .runtime import JsonTextState, Rendered, RenderState, Template, compile_template
from .values import to_json


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


class _Str:
    """A string of the JSON template: constant text, or a template (typed when it is a lone expression)."""

    __slots__ = ("constant", "template")

    def __init__(self, text: str, where: str) -> None:
        try:
            template = compile_template(text)
        except TemplateError as exc:
            raise TemplateError(f"in the string at {where}: {exc}") from None
        texts = [getattr(node, "text", None) for node in template.nodes]
        is_constant = None not in texts
        self.template = None if is_constant else template
        self.constant = "".join(texts) if is_constant else None  # type: ignore[arg-type]


def _compile_structure(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return _Str(value, where)
    if isinstance(value, dict):
        return {
            "__object__": [
                (_Str(k, f"{where} (key {k!r})"), _compile_structure(v, f"{where}.{k}")) for k, v in value.items()
            ]
        }
    if isinstance(value, list):
        return [_compile_structure(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


class JsonTemplate:
    __slots__ = ("structure", "text_template")

    def __init__(self, source: str) -> None:
        self.structure: Any = None
        self.text_template: Template | None = None
        try:
            parsed = _loads(source)
        except ValueError:
            self.text_template = compile_template(source)
        else:
            self.structure = _compile_structure(parsed, "$")

    def render(self, context: Any) -> Rendered:
        if self.text_template is not None:
            st = JsonTextState()
            self.text_template.run(st, context)
            text = st.text()
            try:
                value = _loads(text)
            except ValueError as exc:
                raise TemplateError(f"the rendered body is not valid JSON ({_describe(exc)})") from None
            return Rendered(value, st.missing)
        st = RenderState()
        return Rendered(_render_structure(self.structure, st, context), st.missing)


def _describe(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return str(exc)


def _render_string(node: _Str, st: RenderState, context: Any) -> str:
    if node.template is None:
        return node.constant  # type: ignore[return-value]
    return node.template.render_into(st, context)


def _render_structure(node: Any, st: RenderState, context: Any) -> Any:
    if isinstance(node, _Str):
        if node.template is not None and node.template.lone is not None:
            return to_json(node.template.evaluate_lone(st, context))
        return _render_string(node, st, context)
    if isinstance(node, dict):
        return {_render_string(k, st, context): _render_structure(v, st, context) for k, v in node["__object__"]}
    if isinstance(node, list):
        return [_render_structure(v, st, context) for v in node]
    return node


@functools.lru_cache(maxsize=1024)
def compile_json(source: str) -> JsonTemplate:
    """Compile a JSON body template once (see the module docstring for the two modes)."""
    if not isinstance(source, str):
        raise TemplateError(f"a template must be text, not {type(source).__name__}")
    return JsonTemplate(source)
