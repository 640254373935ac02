"""Render nodes and rendering by walking them; `compiler.py` builds the nodes from the syntax tree.

Rendering is bounded: output size and loop iterations are capped (and a template's length, checked
when it is compiled).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import helpers as _helpers
from .errors import TemplateError
from .syntax import PathExpr
from .values import (
    UNDEFINED,
    get_property,
    is_empty,
    is_falsy,
    object_keys,
    same_value,
    to_text,
)

MAX_OUTPUT = 1024 * 1024  # characters one render may produce
MAX_STEPS = 200_000  # block iterations one render may run
MAX_TEMPLATE = 256 * 1024  # characters of one template

Escape = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Rendered:
    """What a render produced, and every variable it referred to that was not there (dotted paths)."""

    value: Any
    missing: list[str] = field(default_factory=list)


# --- render state --------------------------------------------------------------------------------------


class RenderState:
    """One render: the output buffer, the caps, the missing-variable list and the frozen clock."""

    __slots__ = ("_now", "escape", "missing", "out", "size", "steps")

    def __init__(self, escape: Escape | None = None) -> None:
        self.out: list[str] = []
        self.size = 0
        self.steps = 0
        self.missing: list[str] = []
        self.escape = escape
        self._now: datetime | None = None

    def now(self) -> datetime:
        if self._now is None:
            self._now = _helpers.utcnow()
        return self._now

    def report_missing(self, name: str) -> None:
        if name not in self.missing:
            self.missing.append(name)

    def step(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TemplateError(f"template runs too long (more than {MAX_STEPS} loop iterations)")

    def _append(self, text: str) -> None:
        self.size += len(text)
        if self.size > MAX_OUTPUT:
            raise TemplateError(f"rendered output is too large (more than {MAX_OUTPUT} characters)")
        self.out.append(text)

    def write_literal(self, text: str) -> None:
        self._append(text)

    def write_value(self, value: Any) -> None:
        text = to_text(value)
        if self.escape is not None:
            text = self.escape(text)
        self._append(text)

    def text(self) -> str:
        return "".join(self.out)


# --- expressions -----------------------------------------------------------------------------------


_NULL_ON_THE_WAY: Any = object()


def _walk(current: Any, parts: tuple[str, ...]) -> Any:
    """Follow a path as handlebars.js does (`a != null ? a.b : a`); a null before the end gives a marker."""
    for part in parts:
        if current is UNDEFINED:
            return UNDEFINED
        if current is None:
            return _NULL_ON_THE_WAY
        current = get_property(current, part)
    return current


class PathEval:
    __slots__ = ("data", "depth", "name", "parts", "report")

    def __init__(self, path: PathExpr, *, report: bool = True) -> None:
        self.data = path.data
        self.depth = path.depth
        self.parts = path.parts
        self.name = path.display
        self.report = report

    def eval(self, st: RenderState, depths: tuple, data: dict) -> Any:
        if self.data:
            return self._eval_data(data)
        scope: Any = depths
        for _ in range(self.depth):
            scope = scope[1] if scope is not None else None
        current = _walk(scope[0] if scope is not None else UNDEFINED, self.parts)
        if current is UNDEFINED or current is _NULL_ON_THE_WAY:
            if self.report:
                st.report_missing(self.name)
            return None if current is _NULL_ON_THE_WAY else current
        return current

    def _eval_data(self, data: Any) -> Any:
        for _ in range(self.depth):
            data = data.get("_parent") if isinstance(data, dict) else None
        current = data if data is not None else UNDEFINED
        for part in self.parts:
            # Data paths resolve with `&&` in handlebars.js: a falsy step is the result.
            if is_falsy(current):
                return current
            current = get_property(current, part)
        return current


BLOCK_PARAMS: Any = object()  # the data-frame key of block parameters: not a string, so unreachable


class BlockParamEval:
    """A path starting with a block parameter (`item.name` in `{{#each items as |item|}}`)."""

    __slots__ = ("index", "level", "name", "parts")

    def __init__(self, level: int, index: int, path: PathExpr) -> None:
        self.level, self.index = level, index
        self.parts = path.parts[1:]
        self.name = path.display

    def eval(self, st: RenderState, depths: tuple, data: dict) -> Any:
        frame = data.get(BLOCK_PARAMS)
        for _ in range(self.level):
            frame = frame[1] if frame is not None else None
        values = frame[0] if frame is not None else ()
        current = _walk(values[self.index] if self.index < len(values) else UNDEFINED, self.parts)
        if current is UNDEFINED or current is _NULL_ON_THE_WAY:
            st.report_missing(self.name)
            return None if current is _NULL_ON_THE_WAY else current
        return current


def _with_block_params(data: dict, values: list) -> dict:
    frame = dict(data)
    frame[BLOCK_PARAMS] = (values, data.get(BLOCK_PARAMS))
    return frame


class LiteralEval:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def eval(self, st: RenderState, depths: tuple, data: dict) -> Any:
        return self.value


class HelperEval:
    __slots__ = ("func", "hash", "params")

    def __init__(self, helper: _helpers.Helper, params: list, hash_: dict) -> None:
        self.func = helper.func
        self.params = params
        self.hash = hash_

    def eval(self, st: RenderState, depths: tuple, data: dict) -> Any:
        args = [p.eval(st, depths, data) for p in self.params]
        hash_ = {k: v.eval(st, depths, data) for k, v in self.hash.items()} if self.hash else {}
        return self.func(st, args, hash_)


# --- statements ------------------------------------------------------------------------------------


def render_program(nodes: list, st: RenderState, depths: tuple, data: dict) -> None:
    for node in nodes:
        node.render(st, depths, data)


def _push(value: Any, depths: tuple) -> tuple:
    return depths if same_value(value, depths[0]) else (value, depths)


NULL_CONTEXT: Any = {}  # never written to


def _this(depths: tuple) -> tuple:
    """The scope a built-in block renders `this` with: handlebars.js gives a null context `{}` there."""
    current = depths[0]
    if current is None:
        return (NULL_CONTEXT, depths[1])
    if current is UNDEFINED:
        return (NULL_CONTEXT, depths)
    return depths


class TextNode:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def render(self, st: RenderState, depths: tuple, data: dict) -> None:
        st.write_literal(self.text)


class OutputNode:
    __slots__ = ("expr",)

    def __init__(self, expr: Any) -> None:
        self.expr = expr

    def render(self, st: RenderState, depths: tuple, data: dict) -> None:
        st.write_value(self.expr.eval(st, depths, data))


class IfNode:
    __slots__ = ("cond", "include_zero", "inverse", "negate", "program")

    def __init__(self, cond: Any, include_zero: Any, program: list, inverse: list, negate: bool) -> None:
        self.cond, self.include_zero, self.negate = cond, include_zero, negate
        self.program, self.inverse = program, inverse

    def render(self, st: RenderState, depths: tuple, data: dict) -> None:
        value = self.cond.eval(st, depths, data)
        include_zero = self.include_zero is not None and not is_falsy(self.include_zero.eval(st, depths, data))
        falsy = (not include_zero and is_falsy(value)) or is_empty(value)
        branch = self.program if falsy == self.negate else self.inverse
        render_program(branch, st, _this(depths), data)


class WithNode:
    __slots__ = ("expr", "inverse", "params", "program")

    def __init__(self, expr: Any, program: list, inverse: list, params: bool) -> None:
        self.expr, self.program, self.inverse, self.params = expr, program, inverse, params

    def render(self, st: RenderState, depths: tuple, data: dict) -> None:
        value = self.expr.eval(st, depths, data)
        if is_empty(value):
            render_program(self.inverse, st, _this(depths), data)
        else:
            frame = _with_block_params(data, [value]) if self.params else data
            render_program(self.program, st, _push(value, depths), frame)


def render_each(
    value: Any, program: list, inverse: list, st: RenderState, depths: tuple, data: dict, params: bool = False
) -> None:
    count = 0
    if isinstance(value, list | tuple | dict):
        frame = dict(data)
        frame["_parent"] = data
        if isinstance(value, dict):
            keys = object_keys(value)
            items = [(k, value[k]) for k in keys]
        else:
            items = list(enumerate(value))
        last = len(items) - 1
        for index, (key, item) in enumerate(items):
            st.step()
            frame["key"] = key
            frame["index"] = index
            frame["first"] = index == 0
            frame["last"] = index == last
            if params:
                frame[BLOCK_PARAMS] = ([item, key], data.get(BLOCK_PARAMS))
            render_program(program, st, _push(item, depths), frame)
            count += 1
    if count == 0:
        render_program(inverse, st, _this(depths), data)


class EachNode:
    __slots__ = ("expr", "inverse", "params", "program")

    def __init__(self, expr: Any, program: list, inverse: list, params: bool) -> None:
        self.expr, self.program, self.inverse, self.params = expr, program, inverse, params

    def render(self, st: RenderState, depths: tuple, data: dict) -> None:
        value = self.expr.eval(st, depths, data)
        render_each(value, self.program, self.inverse, st, depths, data, self.params)


class SectionNode:
    """`{{#name}}…{{/name}}` where name is not a helper: handlebars.js' blockHelperMissing."""

    __slots__ = ("expr", "inverse", "program")

    def __init__(self, expr: Any, program: list, inverse: list) -> None:
        self.expr, self.program, self.inverse = expr, program, inverse

    def render(self, st: RenderState, depths: tuple, data: dict) -> None:
        value = self.expr.eval(st, depths, data)
        # Unlike the built-in helpers, handlebars.js renders these with the context as it is (even null).
        if value is True:
            render_program(self.program, st, depths, data)
        elif value is False or value is None or value is UNDEFINED:
            render_program(self.inverse, st, depths, data)
        elif isinstance(value, list | tuple):
            if value:
                render_each(value, self.program, self.inverse, st, depths, data)
            else:
                render_program(self.inverse, st, depths, data)
        else:
            render_program(self.program, st, _push(value, depths), data)
