"""JSON body templates: values never touch the JSON text, and the result is always valid JSON.

A body template is rendered with a placeholder in the place of each value, the result is parsed as
JSON, and only then are the values put into the parsed structure. So a value with quotes, braces,
newlines or `{{x}}` in it is never parsed and never rendered again: it cannot break or inject into the
JSON. The rules, the same whichever way the template is written:

* A JSON string whose rendered content is exactly one value — `"{{qty}}"`, `"{qty}"`,
  `"{{lookup a b}}"` — takes that value with its JSON type (number, boolean, object, array, null; a
  missing variable gives null). Any other string stays a string, values written as text in it.
  Keys are always text.
* A value outside any JSON string — `{"qty": {{qty}}}` — is that value with its JSON type.

Two ways of reading a template, chosen by whether the template itself parses as JSON:

* **Structural** (the template is valid JSON, e.g. `{"name": "{{name}}"}`): it is parsed once, when
  compiled; each string in it (keys and values, JSON escapes decoded) is a template of its own.
* **Text** (anything else: items generated with `{{#each}}`, an unquoted `{{qty}}`): the whole template
  is rendered as text. Whether a value lands inside a JSON string is followed through the template's
  own text; the result must parse as JSON, else TemplateError naming line and column.

A blank template renders to None (no body).
"""

from __future__ import annotations

import functools
import json
import re
import secrets
from typing import Any

from .compiler import Template, compile_template
from .errors import TemplateError
from .runtime import OutputNode, Rendered, RenderState, TextNode
from .values import MAX_NESTING, to_json, to_text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


_PLACEHOLDER = re.compile("\ue000([0-9a-f]{16})([0-9]+)\ue001")


class PlaceholderState(RenderState):
    """A render that writes a placeholder for each value and keeps the values aside.

    Placeholders carry a random nonce per render, so template text cannot forge one. In text mode the
    state follows whether the output is inside a JSON string (through template text only) and quotes
    a placeholder that stands outside one, so it parses as a JSON string.
    """

    __slots__ = ("backslash", "in_string", "nonce", "track", "values")

    def __init__(self, *, json_text: bool) -> None:
        super().__init__()
        # For JSON text, follow strings; a string of a parsed template is all inside one string.
        self.track = json_text
        self.in_string = not json_text
        self.backslash = False
        self.values: list[Any] = []
        self.nonce = secrets.token_hex(8)

    def write_literal(self, text: str) -> None:
        if self.track:
            self._follow_strings(text)
        self._append(text)

    def _follow_strings(self, text: str) -> None:
        in_string, backslash = self.in_string, self.backslash
        for char in text:
            if in_string:
                if backslash:
                    backslash = False
                elif char == "\\":
                    backslash = True
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
        self.in_string, self.backslash = in_string, backslash

    def write_value(self, value: Any) -> None:
        if self.backslash:
            raise TemplateError("a value cannot follow a backslash inside a JSON string")
        placeholder = f"\ue000{self.nonce}{len(self.values)}\ue001"
        self.values.append(value)
        self.size += len(value) if isinstance(value, str) else _size_of(value)
        self._append(placeholder if self.in_string else f'"{placeholder}"')

    def fill(self, node: Any) -> Any:
        """Put the values into a parsed JSON structure (values are never parsed or rendered)."""
        return self._fill(node) if self.values else node

    def _fill(self, node: Any) -> Any:
        if isinstance(node, str):
            return self._fill_string(node, typed=True)
        if isinstance(node, dict):
            return {self._fill_string(k, typed=False): self._fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self._fill(v) for v in node]
        return node

    def _fill_string(self, text: str, *, typed: bool) -> Any:
        if "\ue000" not in text:
            return text
        whole = _PLACEHOLDER.fullmatch(text)
        if typed and whole is not None and whole.group(1) == self.nonce:
            return to_json(self.values[int(whole.group(2))])
        return _PLACEHOLDER.sub(self._text_of, text)

    def _text_of(self, match: re.Match[str]) -> str:
        if match.group(1) != self.nonce:
            return match.group(0)
        return to_text(self.values[int(match.group(2))])


def _size_of(value: Any) -> int:
    if isinstance(value, dict | list | tuple):
        return len(json.dumps(to_json(value)))
    return 24


class _Str:
    """A string of a structural JSON template: constant text, or a template."""

    __slots__ = ("constant", "plain", "template")

    def __init__(self, text: str, where: str) -> None:
        try:
            template = compile_template(text)
        except TemplateError as exc:
            raise TemplateError(f"in the string at {where}: {exc}") from None
        texts = [getattr(node, "text", None) for node in template.nodes]
        is_constant = None not in texts
        self.template = None if is_constant else template
        self.constant = "".join(texts) if is_constant else None  # type: ignore[arg-type]
        # Text around values and no blocks: it can never render to exactly one value, so plain text.
        self.plain = any(isinstance(node, TextNode) for node in template.nodes) and all(
            isinstance(node, TextNode | OutputNode) for node in template.nodes
        )


def _compile_structure(value: Any, where: str, depth: int = 0) -> Any:
    if depth > MAX_NESTING:
        raise TemplateError(f"the JSON template is nested too deeply (at {where})")
    if isinstance(value, str):
        return _Str(value, where)
    if isinstance(value, dict):
        members = [
            (_Str(k, f"{where} (key {k!r})"), _compile_structure(v, f"{where}.{k}", depth + 1))
            for k, v in value.items()
        ]
        return _Object(members)
    if isinstance(value, list):
        return [_compile_structure(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    return value


class _Object:
    __slots__ = ("members",)

    def __init__(self, members: list[tuple[_Str, Any]]) -> None:
        self.members = members


def _render_string(node: _Str, st: RenderState, context: Any, *, typed: bool) -> Any:
    if node.template is None:
        return node.constant
    template = node.template
    if typed and template.lone is not None:
        return to_json(template.evaluate_lone(st, context))
    if node.plain or not typed:
        return template.render_into(st, context)
    placeholders = PlaceholderState(json_text=False)
    placeholders.missing = st.missing
    placeholders._now = st.now()
    text = template.render_into(placeholders, context)
    st.size += placeholders.size
    return placeholders.fill(text)


def _render_structure(node: Any, st: RenderState, context: Any) -> Any:
    if isinstance(node, _Str):
        return _render_string(node, st, context, typed=True)
    if isinstance(node, _Object):
        return {_render_string(k, st, context, typed=False): _render_structure(v, st, context) for k, v in node.members}
    if isinstance(node, list):
        return [_render_structure(v, st, context) for v in node]
    return node


class JsonTemplate:
    """A compiled JSON body template (see the module docstring)."""

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
        if self.text_template is None:
            st = RenderState()
            return Rendered(_render_structure(self.structure, st, context), st.missing)
        st = PlaceholderState(json_text=True)
        self.text_template.run(st, context)
        try:
            parsed = _loads(st.text())
        except ValueError as exc:
            raise TemplateError(f"the rendered body is not valid JSON ({_describe(exc)})") from None
        if _depth_exceeds(parsed, MAX_NESTING):
            raise TemplateError("the rendered body is nested too deeply")
        return Rendered(st.fill(parsed), st.missing)


def _depth_exceeds(node: Any, limit: int) -> bool:
    stack = [(node, 0)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(current, dict):
            stack.extend((v, depth + 1) for v in current.values())
        elif isinstance(current, list):
            stack.extend((v, depth + 1) for v in current)
    return False


def _describe(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return str(exc)


@functools.lru_cache(maxsize=1024)
def compile_json(source: str) -> JsonTemplate:
    """Compile a JSON body template once (see the module docstring for the two modes)."""
    if not isinstance(source, str):
        raise TemplateError(f"a template must be text, not {type(source).__name__}")
    return JsonTemplate(source)
