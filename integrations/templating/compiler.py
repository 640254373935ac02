"""Syntax tree → render nodes (`runtime.py`), and the compiled `Template` with its cache.

Compiling resolves at save time what handlebars.js resolves at compile time (which names are helpers,
which blocks are built in), so an unknown helper or a misused block is a TemplateError from `validate`,
not a surprise at send time.
"""

from __future__ import annotations

import functools
from typing import Any

from . import helpers as _helpers
from .errors import TemplateError, error_at
from .parser import parse
from .runtime import (
    MAX_TEMPLATE,
    BlockParamEval,
    EachNode,
    Escape,
    HelperEval,
    IfNode,
    LiteralEval,
    OutputNode,
    PathEval,
    Rendered,
    RenderState,
    SectionNode,
    TextNode,
    WithNode,
    render_program,
)
from .syntax import Block, Call, Comment, Content, Literal, Mustache, PathExpr, Program
from .values import UNDEFINED, to_text

__all__ = ["Compiler", "Template", "compile_template"]


class Compiler:
    def __init__(self, source: str) -> None:
        self.source = source
        self.block_params: list[tuple[str, ...]] = []  # innermost last

    def error(self, pos: int, message: str) -> TemplateError:
        return error_at(self.source, pos, message)

    def program(self, program: Program | None) -> list:
        if program is None:
            return []
        nodes: list = []
        for stmt in program.body:
            if isinstance(stmt, Content):
                if not stmt.value:
                    continue
                if nodes and isinstance(nodes[-1], TextNode):
                    nodes[-1] = TextNode(nodes[-1].text + stmt.value)
                else:
                    nodes.append(TextNode(stmt.value))
            elif isinstance(stmt, Comment):
                continue
            elif isinstance(stmt, Mustache):
                nodes.append(OutputNode(self.mustache(stmt.call)))
            elif isinstance(stmt, Block):
                nodes.append(self.block(stmt))
        return nodes

    @staticmethod
    def _as_path(name: PathExpr | Literal) -> PathExpr:
        """handlebars.js treats a literal in helper position as a path: `{{"a b"}}` looks up "a b"."""
        if isinstance(name, PathExpr):
            return name
        text = to_text(name.original) if name.original is not UNDEFINED else "undefined"
        if name.original is None:
            text = "null"
        return PathExpr(False, 0, (text,), text, False, name.pos)

    @staticmethod
    def _simple_name(path: PathExpr) -> str | None:
        if len(path.parts) == 1 and not path.scoped and not path.depth and not path.data:
            return path.parts[0]
        return None

    def path(self, path: PathExpr, *, report: bool = True) -> Any:
        if not path.data and not path.depth and not path.scoped and path.parts:
            declared = [names for names in self.block_params if names]  # only these push a frame
            for level, names in enumerate(reversed(declared)):
                if path.parts[0] in names:
                    return BlockParamEval(level, names.index(path.parts[0]), path)
        return PathEval(path, report=report)

    def mustache(self, call: Call) -> Any:
        path = self._as_path(call.path)
        name = self._simple_name(path)
        if not call.params and not call.hash and isinstance(self.path(path), BlockParamEval):
            return self.path(path)
        if name in _helpers.BLOCK_HELPERS:
            raise self.error(call.pos, f"{name} is a block helper: use {{{{#{name} …}}}}…{{{{/{name}}}}}")
        is_helper = call.is_subexpr or bool(call.params) or bool(call.hash) or name in _helpers.HELPERS
        if not is_helper:
            return self.path(path)
        return self.helper_call(path, name, call)

    def helper_call(self, path: PathExpr, name: str | None, call: Call) -> HelperEval:
        if name is None or name not in _helpers.HELPERS:
            shown = name or path.original
            if name in _helpers.BLOCK_HELPERS:
                raise self.error(call.pos, f"{name} is a block helper and cannot be used in a subexpression")
            raise self.error(call.pos, f"unknown helper {shown!r} (known: {', '.join(sorted(_helpers.HELPERS))})")
        helper = _helpers.HELPERS[name]
        count = len(call.params)
        if not helper.min_args <= count <= helper.max_args:
            expected = (
                str(helper.min_args)
                if helper.min_args == helper.max_args
                else f"{helper.min_args} to {helper.max_args}"
            )
            raise self.error(call.pos, f"helper {name!r} takes {expected} argument(s), got {count}")
        params = [self.param(p) for p in call.params]
        hash_ = {k: self.param(v) for k, v in (call.hash or {}).items()}
        return HelperEval(helper, params, hash_)

    def param(self, param: Any, *, report: bool = True) -> Any:
        if isinstance(param, Call):
            return self.helper_call(self._as_path(param.path), self._simple_name(self._as_path(param.path)), param)
        if isinstance(param, Literal):
            return LiteralEval(param.value)
        return self.path(param, report=report)

    def block(self, block: Block) -> Any:
        call = block.call
        path = self._as_path(call.path)
        name = self._simple_name(path)
        if call.block_params and name not in ("each", "with"):
            raise self.error(call.pos, "block parameters (as |x|) only work with #each and #with")
        self.block_params.append(call.block_params)
        program = self.program(block.program)
        self.block_params.pop()
        inverse = self.program(block.inverse)
        if name in _helpers.BLOCK_HELPERS:
            return self.builtin_block(name, call, program, inverse)
        if call.params or call.hash or name in _helpers.HELPERS:
            if name in _helpers.HELPERS:
                raise self.error(call.pos, f"{name!r} is not a block helper: use {{{{{name} …}}}}")
            raise self.error(call.pos, f"unknown block helper {path.original!r} (known: each, if, unless, with)")
        return SectionNode(self.path(path, report=False), program, inverse)

    def builtin_block(self, name: str, call: Call, program: list, inverse: list) -> Any:
        if len(call.params) != 1:
            raise self.error(call.pos, f"#{name} requires exactly one argument")
        hash_ = call.hash or {}
        unknown = set(hash_) - ({"includeZero"} if name in ("if", "unless") else set())
        if unknown:
            raise self.error(call.pos, f"#{name} does not take {', '.join(sorted(unknown))}=")
        if name in ("if", "unless"):
            cond = self.param(call.params[0], report=False)
            include_zero = self.param(hash_["includeZero"]) if "includeZero" in hash_ else None
            return IfNode(cond, include_zero, program, inverse, negate=name == "unless")
        expr = self.param(call.params[0])
        if name == "each":
            return EachNode(expr, program, inverse, bool(call.block_params))
        return WithNode(expr, program, inverse, bool(call.block_params))


# --- templates -------------------------------------------------------------------------------------


class Template:
    """A compiled template; render it as often as needed (it holds no per-render state)."""

    __slots__ = ("lone", "nodes", "source")

    def __init__(self, source: str, nodes: list) -> None:
        self.source = source
        self.nodes = nodes
        # A template that is exactly one `{{expr}}` can give that value with its own JSON type.
        self.lone = nodes[0].expr if len(nodes) == 1 and isinstance(nodes[0], OutputNode) else None

    def run(self, st: RenderState, context: Any) -> None:
        render_program(self.nodes, st, (context, None), {"root": context})

    def render(self, context: Any, escape: Escape | None = None) -> Rendered:
        st = RenderState(escape)
        self.run(st, context)
        return Rendered(st.text(), st.missing)

    def render_into(self, st: RenderState, context: Any) -> str:
        """Render with a shared state (one clock, one missing list, one size cap for many strings)."""
        st.out = []
        self.run(st, context)
        return st.text()

    def evaluate_lone(self, st: RenderState, context: Any) -> Any:
        """The value of a lone `{{expr}}` template, untouched (not converted to text)."""
        assert self.lone is not None
        return self.lone.eval(st, (context, None), {"root": context})


@functools.lru_cache(maxsize=2048)
def compile_template(source: str) -> Template:
    """Parse and compile a template once; later calls with the same text reuse it."""
    if not isinstance(source, str):
        raise TemplateError(f"a template must be text, not {type(source).__name__}")
    if len(source) > MAX_TEMPLATE:
        raise TemplateError(f"template is too long (more than {MAX_TEMPLATE} characters)")
    return Template(source, Compiler(source).program(parse(source)))
