"""Switchboard's Handlebars renderer over plain JSON data, with output encoded for where it lands.

Templates use handlebars.js 4.x syntax (see docs/templating.md) and render the same text handlebars.js
renders with `noEscape: true` (a differential test holds us to that), plus the `{name}` shorthand and
our helpers. The data is JSON (dict, list, str, int, float, bool, None): a template can read keys,
indices and `length`, and nothing else — no Python attribute, no method call, no code.

Where a value lands decides how it is encoded; literal template text is never encoded:

* `render(template, context, escape=None)` — text; `escape` (if given) is applied to each value.
* `render_path` — each value percent-encoded as one path segment (`/ ? # %` and spaces included).
* `render_query_value` / `render_query` — plain text: the HTTP layer encodes the query (`params=`),
  so values are not encoded twice. Form bodies are rendered the same way and form-encoded there.
* `render_header` / `render_headers` — text, refused (TemplateError) if it would contain CR, LF or
  NUL, or a character outside Latin-1 (which HTTP headers cannot carry; use `{{urlencode x}}` or
  `{{base64 x}}`).
* `render_json` — a JSON body: see `integrations.templating.json_body` for the two modes.

Every variable that a template refers to and that is not there is rendered empty and listed in
`Rendered.missing` (as the dotted path written); a caller shows these as warnings. References used
only as a test (`{{#if x}}`, `{{#unless x}}`, `{{#x}}…{{/x}}`) are not listed: testing is their point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from .compiler import Template, compile_template
from .errors import TemplateError
from .helpers import BLOCK_HELPERS, HELPERS, Helper, HelperFunc
from .json_body import compile_json
from .runtime import MAX_OUTPUT, MAX_STEPS, Rendered

__all__ = [
    "HELPERS",
    "MAX_OUTPUT",
    "MAX_STEPS",
    "Helper",
    "Rendered",
    "Template",
    "TemplateError",
    "compile_template",
    "register_helper",
    "render",
    "render_header",
    "render_headers",
    "render_json",
    "render_path",
    "render_query",
    "render_query_value",
    "validate",
    "validate_json",
]


def register_helper(name: str, func: HelperFunc, min_args: int = 0, max_args: int = 0) -> None:
    """Add (or replace) a helper; compiled templates are recompiled so they see it."""
    if name in BLOCK_HELPERS:
        raise ValueError(f"{name} is a built-in block helper")
    HELPERS[name] = Helper(func, min_args, max_args)
    compile_template.cache_clear()


def _template_text(template: str | None) -> str:
    if template is None:
        return ""
    if not isinstance(template, str):
        raise TemplateError(f"a template must be text, not {type(template).__name__}")
    return template


def render(template: str, context: Any, *, escape: Callable[[str], str] | None = None) -> Rendered:
    """Render a template to text; `escape` is applied to every interpolated value, not to the template."""
    return compile_template(_template_text(template)).render(context, escape)


def _path_segment(text: str) -> str:
    return quote(text, safe="")


def render_path(template: str, context: Any) -> Rendered:
    """Render a URL path: each value percent-encoded as a single segment, the template's own `/` kept."""
    return render(template, context, escape=_path_segment)


def render_query_value(template: str, context: Any) -> Rendered:
    """Render one query-parameter value as plain text (the HTTP layer percent-encodes the query)."""
    return render(template, context)


def render_header(template: str, context: Any) -> Rendered:
    """Render a header name or value; TemplateError if it would hold CR/LF/NUL or non-Latin-1 text."""
    rendered = render(template, context)
    _check_header(rendered.value)
    return rendered


def _check_header(text: str) -> None:
    if "\r" in text or "\n" in text or "\0" in text:
        raise TemplateError("a header cannot contain a line break (CR or LF) or NUL")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise TemplateError(
            "a header can only contain Latin-1 characters; encode the value, e.g. {{urlencode x}}"
        ) from None


def _render_map(templates: Mapping[str, str] | None, context: Any, *, header: bool) -> Rendered:
    result: dict[str, str] = {}
    missing: list[str] = []
    for key_template, value_template in (templates or {}).items():
        key = render(key_template, context)
        value = render(value_template, context)
        if header:
            _check_header(key.value)
            _check_header(value.value)
        result[key.value] = value.value
        missing.extend(name for name in key.missing + value.missing if name not in missing)
    return Rendered(result, missing)


def render_query(templates: Mapping[str, str] | None, context: Any) -> Rendered:
    """Render a map of query (or form) templates, keys and values, to plain text for the HTTP layer."""
    return _render_map(templates, context, header=False)


def render_headers(templates: Mapping[str, str] | None, context: Any) -> Rendered:
    """Render a map of header templates; TemplateError as in `render_header`."""
    return _render_map(templates, context, header=True)


def render_json(template: str, context: Any) -> Rendered:
    """Render a JSON body template to a JSON value (dict, list, …); a blank template gives None."""
    text = _template_text(template)
    if not text.strip():
        return Rendered(None, [])
    return compile_json(text).render(context)


def validate(template: str) -> None:
    """Raise TemplateError (with line and column) if the template cannot compile; use it at save time."""
    compile_template(_template_text(template))


def validate_json(template: str, *, sample: Any = None) -> None:
    """`validate` for a JSON body template; with `sample` data, also check the result is valid JSON."""
    text = _template_text(template)
    if not text.strip():
        return
    compiled = compile_json(text)
    if sample is not None:
        compiled.render(sample)
