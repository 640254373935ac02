"""Standalone lines and `~`: a port of handlebars.js' WhitespaceControl visitor (same rules, same order).

A block tag, `{{else}}` or comment alone on its line takes the line's indentation and newline with it;
`~` strips all whitespace on its side. JavaScript's meaning of `\\s` and `$` is kept (Python's `$`
would also match before a final newline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .syntax import Block, Comment, Content, Mustache, Program

# JavaScript's \s. The rules below are the regexes of handlebars.js, written with strip() so they stay
# linear on long runs of whitespace (the regexes backtrack quadratically in Python).
JS_WHITESPACE = " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def _ends_with_blank_line(text: str, *, at_root: bool) -> bool:
    r"""/\r?\n\s*?$/ (or, at the root, /(^|\r?\n)\s*?$/) on a content's original text."""
    tail = text[len(text.rstrip(JS_WHITESPACE)) :]
    return "\n" in tail or (at_root and tail == text)


def _starts_with_blank_line(text: str, *, at_root: bool) -> bool:
    r"""/^\s*?\r?\n/ (or, at the root, /^\s*?(\r?\n|$)/) on a content's original text."""
    head = text[: len(text) - len(text.lstrip(JS_WHITESPACE))]
    return "\n" in head or (at_root and head == text)


def _is_prev_whitespace(body: list, i: int | None = None, is_root: bool = False) -> bool:
    if i is None:
        i = len(body)
    prev = body[i - 1] if i - 1 >= 0 else None
    sibling = body[i - 2] if i - 2 >= 0 else None
    if prev is None:
        return is_root
    if isinstance(prev, Content):
        return _ends_with_blank_line(prev.original, at_root=sibling is None and is_root)
    return False


def _is_next_whitespace(body: list, i: int | None = None, is_root: bool = False) -> bool:
    if i is None:
        i = -1
    nxt = body[i + 1] if i + 1 < len(body) else None
    sibling = body[i + 2] if i + 2 < len(body) else None
    if nxt is None:
        return is_root
    if isinstance(nxt, Content):
        return _starts_with_blank_line(nxt.original, at_root=sibling is None and is_root)
    return False


_LINE_START = re.compile(r"^[ \t]*\r?\n?")


def _omit_right(body: list, i: int | None = None, multiple: bool = False) -> None:
    j = 0 if i is None else i + 1
    current = body[j] if 0 <= j < len(body) else None
    if not isinstance(current, Content) or (not multiple and current.right_stripped):
        return
    original = current.value
    if multiple:
        current.value = current.value.lstrip(JS_WHITESPACE)
    else:
        current.value = _LINE_START.sub("", current.value, count=1)
    current.right_stripped = current.value != original


def _omit_left(body: list, i: int | None = None, multiple: bool = False) -> bool:
    j = len(body) - 1 if i is None else i - 1
    current = body[j] if 0 <= j < len(body) else None
    if not isinstance(current, Content) or (not multiple and current.left_stripped):
        return False
    original = current.value
    current.value = current.value.rstrip(JS_WHITESPACE if multiple else " \t")
    current.left_stripped = current.value != original
    return current.left_stripped


@dataclass(slots=True)
class _Strip:
    open: bool = False
    close: bool = False
    open_standalone: bool = False
    close_standalone: bool = False
    inline_standalone: bool = False


@dataclass
class WhitespaceControl:
    root_seen: bool = field(default=False)

    def program(self, program: Program, is_root: bool = False) -> None:
        body = program.body
        for i, current in enumerate(body):
            strip = self.accept(current)
            if strip is None:
                continue
            prev_ws = _is_prev_whitespace(body, i, is_root)
            next_ws = _is_next_whitespace(body, i, is_root)
            open_standalone = strip.open_standalone and prev_ws
            close_standalone = strip.close_standalone and next_ws
            inline_standalone = strip.inline_standalone and prev_ws and next_ws
            if strip.close:
                _omit_right(body, i, True)
            if strip.open:
                _omit_left(body, i, True)
            if inline_standalone:
                _omit_right(body, i)
                _omit_left(body, i)
            if open_standalone:
                _omit_right((current.program or current.inverse).body)
                _omit_left(body, i)
            if close_standalone:
                _omit_right(body, i)
                _omit_left((current.inverse or current.program).body)

    def accept(self, node: Any) -> _Strip | None:
        if isinstance(node, Mustache):
            return _Strip(open=node.strip[0], close=node.strip[1])
        if isinstance(node, Comment):
            return _Strip(open=node.strip[0], close=node.strip[1], inline_standalone=True)
        if isinstance(node, Block):
            return self.block(node)
        return None

    def block(self, block: Block) -> _Strip:
        if block.program is not None:
            self.program(block.program)
        if block.inverse is not None:
            self.program(block.inverse)
        program = block.program or block.inverse
        assert program is not None
        inverse = block.inverse if block.program is not None else None
        first_inverse = last_inverse = inverse
        if inverse is not None and inverse.chained:
            first_inverse = inverse.body[0].program
            while last_inverse is not None and last_inverse.chained:
                last_inverse = last_inverse.body[-1].program
        close_strip = block.close_strip or (False, False)
        strip = _Strip(
            open=block.open_strip[0],
            close=close_strip[1],
            open_standalone=_is_next_whitespace(program.body),
            close_standalone=_is_prev_whitespace((first_inverse or program).body),
        )
        if block.open_strip[1]:
            _omit_right(program.body, None, True)
        if inverse is not None:
            assert first_inverse is not None and last_inverse is not None  # a chain always ends in a program
            inverse_strip = block.inverse_strip or (False, False)
            if inverse_strip[0]:
                _omit_left(program.body, None, True)
            if inverse_strip[1]:
                _omit_right(first_inverse.body, None, True)
            if close_strip[0]:
                _omit_left(last_inverse.body, None, True)
            if _is_prev_whitespace(program.body) and _is_next_whitespace(first_inverse.body):
                _omit_left(program.body)
                _omit_right(first_inverse.body)
        elif close_strip[0]:
            _omit_left(program.body, None, True)
        return strip
