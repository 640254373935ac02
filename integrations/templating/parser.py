"""Template text → syntax tree, following handlebars.js 4.x's lexer, grammar and whitespace rules.

The lexer rules are those of handlebars.js (`src/handlebars.l`), tried in the same order, so escapes
(`\\{{`), comments, literals and `[segment]`s split text the way handlebars.js splits it; standalone
lines and `~` are then handled by a port of its WhitespaceControl visitor (whitespace.py). Our one addition: in text,
`{name}` / `{a.b.c}` is a mustache of its own (the shorthand), `\\{x}` writes `{x}`.
Partials, decorators and raw blocks are refused with a clear message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import TemplateError, error_at
from .syntax import Block, Call, Comment, Content, Literal, Mustache, PathExpr, Program
from .tokens import LONG_COMMENT, MU_TOKEN, OPEN_TAG, SHORT_COMMENT, SHORTHAND, TokenStream, unescape_segment
from .values import UNDEFINED
from .whitespace import WhitespaceControl

MAX_DEPTH = 64


@dataclass(slots=True)
class _Tag:
    """A mustache-like tag before blocks are assembled: kind is one of mustache, block, inverse_block,
    end, inverse (a plain else) and else_chain (`{{else if x}}`)."""

    kind: str
    strip: tuple[bool, bool]
    pos: int
    call: Call | None = None


@dataclass(slots=True)
class _InverseAndProgram:
    strip: tuple[bool, bool]
    program: Program
    chain: bool = False


class Parser:
    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0
        self.pending: list[Any] = []
        self.emu = False
        self.depth = 0  # blocks
        self.expr_depth = 0  # subexpressions

    def error(self, offset: int, message: str) -> TemplateError:
        return error_at(self.src, offset, message)

    # Statement lexer: content, comments and tags, one at a time.
    def next_statement(self) -> Any:
        if self.pending:
            return self.pending.pop(0)
        src, pos = self.src, self.pos
        if pos >= len(src):
            return None
        if self.emu:
            self.emu = False
            end = self._emu_end(pos)
            self.pos = end
            self._queue_content(src[pos:end], pos)
            return self.next_statement()
        idx = src.find("{{", pos)
        if idx == -1:
            self.pos = len(src)
            self._queue_content(src[pos:], pos)
            return self.next_statement()
        text = src[pos:idx]
        if text.endswith("\\\\"):
            text = text[:-1]
        elif text.endswith("\\"):
            text = text[:-1]
            self.emu = True
        if text:
            self.pos = idx
            self._queue_content(text, pos)
            if self.pending:
                return self.pending.pop(0)
        self.pos = idx
        if self.emu:
            return self.next_statement()
        return self._lex_tag(idx)

    def _emu_end(self, start: int) -> int:
        """Where a literal `\\{{…` run ends: at least two characters, up to the next `{{`, `\\{{` or `\\\\{{`."""
        src = self.src
        k = src.find("{{", start + 2)
        if k == -1:
            return len(src)
        for candidate in (k - 2, k - 1):
            if candidate >= start + 2 and src[candidate:k] == "\\" * (k - candidate):
                return candidate
        return k

    def _queue_content(self, text: str, pos: int) -> None:
        """Content, split around `{name}` shorthands (each becomes a mustache of its own)."""
        if "{" not in text:
            self.pending.append(Content(text, text, pos))
            return
        chunk = ""
        chunk_pos = pos
        last = 0
        for match in SHORTHAND.finditer(text):
            chunk += text[last : match.start()]
            last = match.end()
            if match.group("escaped"):
                chunk += match.group("escaped")
                continue
            if match.group("bs_var"):
                chunk += "\\"
            if chunk:
                self.pending.append(Content(chunk, chunk, chunk_pos))
            name = match.group("bs_var") or match.group("var")
            at = pos + match.start()
            path = self._prepare_path(False, [(p, p, "." if i else "") for i, p in enumerate(name.split("."))], at)
            self.pending.append(Mustache(Call(path, [], None, at), (False, False), at))
            chunk = ""
            chunk_pos = pos + last
        chunk += text[last:]
        if chunk:
            self.pending.append(Content(chunk, chunk, chunk_pos))

    def _lex_tag(self, idx: int) -> Any:
        src = self.src
        m = OPEN_TAG.match(src, idx)
        assert m is not None
        open_strip = bool(m.group("strip"))
        if m.group("raw"):
            raise self.error(idx, "raw blocks ({{{{raw}}}}) are not supported")
        if m.group("partial"):
            raise self.error(idx, "partials ({{> name}}) are not supported")
        if m.group("decorator"):
            raise self.error(idx, "decorators ({{* name}}) are not supported")
        if m.group("long_comment"):
            c = LONG_COMMENT.match(src, idx)
            if c is None:
                raise self.error(idx, "comment {{!-- is never closed (expected --}})")
            self.pos = c.end()
            return Comment((open_strip, bool(c.group(1))), idx)
        if m.group("comment"):
            c = SHORT_COMMENT.match(src, idx)
            if c is None:
                raise self.error(idx, "comment {{! is never closed (expected }})")
            self.pos = c.end()
            text = c.group(0)
            return Comment((open_strip, text[-3] == "~"), idx)
        if m.group("inverse") or m.group("else"):
            self.pos = m.end()
            return _Tag("inverse", (open_strip, bool(m.group("istrip") or m.group("estrip"))), idx)
        self.pos = m.end()
        if m.group("end"):
            tokens, close_strip = self._lex_mu(idx, unescaped=False)
            path = self._parse_path_only(tokens, idx)
            return _Tag("end", (open_strip, close_strip), idx, Call(path, [], None, idx))
        kind = "mustache"
        for name in ("block", "inverse_block", "else_chain"):
            if m.group(name):
                kind = name
        tokens, close_strip = self._lex_mu(idx, unescaped=bool(m.group("unescaped")))
        call = self._parse_call(tokens, idx, kind)
        if kind == "mustache":
            return Mustache(call, (open_strip, close_strip), idx)
        return _Tag(kind, (open_strip, close_strip), idx, call)

    def _lex_mu(self, open_at: int, *, unescaped: bool) -> tuple[list[tuple[str, Any, int]], bool]:
        src, pos = self.src, self.pos
        if src.find("}}", pos) == -1:
            raise self.error(open_at, "{{ is never closed (expected }})")
        tokens: list[tuple[str, Any, int]] = []
        while True:
            if pos >= len(src):
                raise self.error(open_at, "{{ is never closed (expected }})")
            m = MU_TOKEN.match(src, pos)
            assert m is not None
            kind = next(k for k, v in m.groupdict().items() if v is not None and k not in ("strip", "ustrip"))
            text = m.group(kind)
            at = pos
            pos = m.end()
            if kind == "WS":
                continue
            if kind == "CLOSE_UNESCAPED" and not unescaped and text == "}}}":
                # `{"qty": {{qty}}}` — handlebars.js refuses this; we read it as `{{qty}}` then `}`.
                self.pos = at + 2
                return tokens, False
            if kind in ("CLOSE", "CLOSE_UNESCAPED"):
                if (kind == "CLOSE_UNESCAPED") != unescaped:
                    raise self.error(at, "expected }}}" if unescaped else "unexpected }}} (expected }})")
                self.pos = pos
                return tokens, bool(m.group("strip") or m.group("ustrip"))
            if kind in ("RAW", "NESTED_OPEN"):
                raise self.error(at, "unexpected {{ inside a tag (expected }})")
            if kind == "INVALID":
                raise self.error(at, f"unexpected character {text!r} in a tag")
            tokens.append((kind, text, at))

    # Grammar over the tokens of one tag.
    def _parse_call(self, tokens: list, open_at: int, kind: str) -> Call:
        stream = TokenStream(tokens)
        if stream.peek() is None:
            raise self.error(open_at, "empty tag: expected a name")
        call = self._parse_call_body(stream, open_at, is_subexpr=False)
        if stream.peek() is not None and stream.peek()[0] == "OPEN_BLOCK_PARAMS":
            call.block_params = self._parse_block_params(stream, kind)
        if stream.peek() is not None:
            raise self.error(stream.peek()[2], f"unexpected {stream.peek()[1]!r} in a tag")
        return call

    def _parse_block_params(self, stream: TokenStream, kind: str) -> tuple[str, ...]:
        opener = stream.next()
        if kind not in ("block", "else_chain"):
            raise self.error(opener[2], "block parameters (as |x|) only follow a block opening like {{#each}}")
        names: list[str] = []
        while (tok := stream.next()) is not None and tok[0] == "ID":
            names.append(tok[1])
        if tok is None or tok[0] != "CLOSE_BLOCK_PARAMS" or not names:
            raise self.error(opener[2], "block parameters must be names between bars: as |item index|")
        return tuple(names)

    def _parse_call_body(self, stream: TokenStream, at: int, *, is_subexpr: bool) -> Call:
        self.expr_depth += 1
        if self.expr_depth > MAX_DEPTH:
            raise self.error(at, "expressions nested too deeply")
        name = self._parse_helper_name(stream)
        params: list[Any] = []
        hash_: dict[str, Any] | None = None
        while (tok := stream.peek()) is not None and tok[0] not in ("CLOSE_SEXPR", "OPEN_BLOCK_PARAMS"):
            if tok[0] == "ID" and stream.peek(1) is not None and stream.peek(1)[0] == "EQUALS":
                hash_ = hash_ or {}
                stream.next()
                stream.next()
                hash_[tok[1]] = self._parse_param(stream)
                continue
            if hash_ is not None:
                raise self.error(tok[2], "positional arguments must come before key=value arguments")
            params.append(self._parse_param(stream))
        self.expr_depth -= 1
        return Call(name, params, hash_, at, is_subexpr)

    def _parse_param(self, stream: TokenStream) -> Any:
        tok = stream.peek()
        if tok is None:
            raise self.error(len(self.src), "unexpected end of tag")
        if tok[0] == "OPEN_SEXPR":
            stream.next()
            if stream.peek() is None or stream.peek()[0] == "CLOSE_SEXPR":
                raise self.error(tok[2], "empty subexpression: expected a helper name after (")
            call = self._parse_call_body(stream, tok[2], is_subexpr=True)
            end = stream.next()
            if end is None or end[0] != "CLOSE_SEXPR":
                raise self.error(tok[2], "subexpression is never closed (expected ))")
            return call
        return self._parse_helper_name(stream)

    def _parse_helper_name(self, stream: TokenStream) -> PathExpr | Literal:
        tok = stream.next()
        if tok is None:
            raise self.error(len(self.src), "unexpected end of tag")
        kind, text, at = tok
        if kind in ("DQSTRING", "SQSTRING"):
            quote = text[0]
            value = text[1:-1].replace("\\" + quote, quote)
            return Literal(value, value, at)
        if kind == "NUMBER":
            value = float(text) if "." in text else int(text)
            return Literal(value, value, at)
        if kind == "BOOLEAN":
            return Literal(text == "true", text == "true", at)
        if kind == "NULL":
            return Literal(None, None, at)
        if kind == "UNDEFINED":
            return Literal(UNDEFINED, UNDEFINED, at)
        data = False
        if kind == "DATA":
            data = True
            tok = stream.next()
            if tok is None or tok[0] not in ("ID", "LITERAL_ID", "DOTDOT", "DOT"):
                raise self.error(at, "expected a name after @")
            kind, text, at = tok
        if kind not in ("ID", "LITERAL_ID", "DOTDOT", "DOT"):
            raise self.error(at, f"unexpected {text!r}: expected a name, a path or a literal")
        segments = [self._segment(kind, text, "")]
        while (nxt := stream.peek()) is not None and nxt[0] == "SEP":
            stream.next()
            seg = stream.next()
            if seg is not None and seg[0] == "NUMBER":
                raise self.error(seg[2], f"a number at the end of a path needs brackets: .[{seg[1]}]")
            if seg is None or seg[0] not in ("ID", "LITERAL_ID", "DOTDOT", "DOT"):
                raise self.error(nxt[2], f"expected a name after {nxt[1]!r}")
            segments.append(self._segment(seg[0], seg[1], nxt[1]))
        return self._prepare_path(data, segments, tok[2] if not data else at)

    @staticmethod
    def _segment(kind: str, text: str, separator: str) -> tuple[str, str, str]:
        if kind == "LITERAL_ID":
            return unescape_segment(text)[1:-1], text, separator
        return text, text, separator

    def _prepare_path(self, data: bool, segments: list[tuple[str, str, str]], at: int) -> PathExpr:
        original = "@" if data else ""
        dig: list[str] = []
        depth = 0
        for part, part_original, separator in segments:
            is_literal = part_original != part
            original += separator + part
            if not is_literal and part in ("..", ".", "this"):
                if dig:
                    raise self.error(at, f"invalid path: {original}")
                if part == "..":
                    depth += 1
            else:
                dig.append(part)
        scoped = bool(re.search(r"^\.|this\b", original))
        return PathExpr(data, depth, tuple(dig), original, scoped, at)

    def _parse_path_only(self, tokens: list, at: int) -> PathExpr:
        stream = TokenStream(tokens)
        name = self._parse_helper_name(stream) if stream.peek() else None
        if name is None or stream.peek() is not None:
            raise self.error(at, "expected a block name after {{/")
        if isinstance(name, Literal):
            return PathExpr(False, 0, (str(name.original),), str(name.original), False, at)
        return name

    # Blocks.
    def parse(self) -> Program:
        program, tag = self.parse_program()
        if tag is not None:
            raise self._stray(tag)
        WhitespaceControl().program(program, is_root=True)
        return program

    def _stray(self, tag: _Tag) -> TemplateError:
        if tag.kind == "end":
            return self.error(tag.pos, f"{{{{/{_name(tag.call)}}}}} closes a block that was never opened")
        return self.error(tag.pos, "{{else}} outside a block")

    def parse_program(self) -> tuple[Program, _Tag | None]:
        body: list[Any] = []
        while True:
            stmt = self.next_statement()
            if stmt is None:
                return Program(body), None
            if isinstance(stmt, _Tag):
                if stmt.kind in ("block", "inverse_block"):
                    body.append(self.parse_block(stmt))
                    continue
                return Program(body), stmt
            body.append(stmt)

    def _expect_end(self, tag: _Tag | None, opener: _Tag) -> _Tag:
        name = _name(opener.call)
        if tag is None:
            raise self.error(opener.pos, f"{{{{#{name}}}}} is never closed (expected {{{{/{name}}}}})")
        if tag.kind != "end":
            raise self.error(tag.pos, f"unexpected {{{{else}}}} (expected {{{{/{name}}}}})")
        assert tag.call is not None and opener.call is not None
        if not isinstance(opener.call.path, PathExpr) or tag.call.path.original != opener.call.path.original:
            raise self.error(
                tag.pos, f"{{{{/{tag.call.path.original}}}}} does not match {{{{#{name}}}}} (expected {{{{/{name}}}}})"
            )
        return tag

    def parse_block(self, opener: _Tag) -> Block:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(opener.pos, "blocks nested too deeply")
        program, tag = self.parse_program()
        inverse_and: _InverseAndProgram | None = None
        if tag is not None and tag.kind == "inverse":
            inverse_program, tag_after = self.parse_program()
            inverse_and = _InverseAndProgram(tag.strip, inverse_program)
            tag = tag_after
        elif tag is not None and tag.kind == "else_chain":
            inverse_and, tag = self._parse_inverse_chain(tag, opener)
        close = self._expect_end(tag, opener)
        self.depth -= 1
        return _prepare_block(opener, program, inverse_and, close.strip, inverted=opener.kind == "inverse_block")

    def _parse_inverse_chain(self, chain: _Tag, opener: _Tag) -> tuple[_InverseAndProgram, _Tag | None]:
        self.depth += 1  # each {{else if}} nests a block in the tree
        if self.depth > MAX_DEPTH:
            raise self.error(chain.pos, "blocks nested too deeply (or too many {{else if}} in one block)")
        program, tag = self.parse_program()
        nested: _InverseAndProgram | None = None
        if tag is not None and tag.kind == "else_chain":
            nested, tag = self._parse_inverse_chain(tag, opener)
        elif tag is not None and tag.kind == "inverse":
            inverse_program, tag_after = self.parse_program()
            nested = _InverseAndProgram(tag.strip, inverse_program)
            tag = tag_after
        inner = _prepare_block(chain, program, nested, nested.strip if nested else None, inverted=False)
        self.depth -= 1
        return _InverseAndProgram(chain.strip, Program([inner], chained=True), chain=True), tag


def _name(call: Call | None) -> str:
    if call is None:
        return ""
    path = call.path
    return path.original if isinstance(path, PathExpr) else str(path.original)


def _prepare_block(
    opener: _Tag,
    program: Program,
    inverse_and: _InverseAndProgram | None,
    close_strip: tuple[bool, bool] | None,
    *,
    inverted: bool,
) -> Block:
    inverse = None
    inverse_strip = None
    if inverse_and is not None:
        if inverse_and.chain and close_strip is not None:
            inverse_and.program.body[0].close_strip = close_strip
        inverse_strip = inverse_and.strip
        inverse = inverse_and.program
    first: Program | None = program
    if inverted:
        first, inverse = inverse, program
    assert opener.call is not None
    return Block(opener.call, first, inverse, opener.strip, inverse_strip, close_strip, opener.pos)


def parse(source: str) -> Program:
    """Parse a template into its syntax tree (whitespace rules applied); raises TemplateError."""
    return Parser(source).parse()
