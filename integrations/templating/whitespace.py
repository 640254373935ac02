"""Standalone lines and `~`: a port of handlebars.js' WhitespaceControl visitor (same rules, same order).

A block tag, `{{else}}` or comment alone on its line takes the line's indentation and newline with it;
`~` strips all whitespace on its side. JavaScript regex semantics are kept (`\\Z`, not `$`, which in
Python would also match before a final newline).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .syntax import Block, Comment, Content, Mustache, Program

_PREV_WS_SIBLING = re.compile(r"\r?\n\s*?\Z")
_PREV_WS_ROOT = re.compile(r"(^|\r?\n)\s*?\Z")
_NEXT_WS_SIBLING = re.compile(r"^\s*?\r?\n")
_NEXT_WS_ROOT = re.compile(r"^\s*?(\r?\n|\Z)")


def _is_prev_whitespace(body: list, i: int | None = None, is_root: bool = False) -> bool:
    if i is None:
        i = len(body)
    prev = body[i - 1] if i - 1 >= 0 else None
    sibling = body[i - 2] if i - 2 >= 0 else None
    if prev is None:
        return is_root
    if isinstance(prev, Content):
        pattern = _PREV_WS_SIBLING if (sibling is not None or not is_root) else _PREV_WS_ROOT
        return pattern.search(prev.original) is not None
    return False


def _is_next_whitespace(body: list, i: int | None = None, is_root: bool = False) -> bool:
    if i is None:
        i = -1
    nxt = body[i + 1] if i + 1 < len(body) else None
    sibling = body[i + 2] if i + 2 < len(body) else None
    if nxt is None:
        return is_root
    if isinstance(nxt, Content):
        pattern = _NEXT_WS_SIBLING if (sibling is not None or not is_root) else _NEXT_WS_ROOT
        return pattern.search(nxt.original) is not None
    return False


def _omit_right(body: list, i: int | None = None, multiple: bool = False) -> None:
    j = 0 if i is None else i + 1
    current = body[j] if 0 <= j < len(body) else None
    if not isinstance(current, Content) or (not multiple and current.right_stripped):
        return
    original = current.value
    current.value = re.sub(r"^\s+" if multiple else r"^[ \t]*\r?\n?", "", current.value, count=1)
    current.right_stripped = current.value != original


def _omit_left(body: list, i: int | None = None, multiple: bool = False) -> bool:
    j = len(body) - 1 if i is None else i - 1
    current = body[j] if 0 <= j < len(body) else None
    if not isinstance(current, Content) or (not multiple and current.left_stripped):
        return False
    original = current.value
    current.value = re.sub(r"\s+\Z" if multiple else r"[ \t]+\Z", "", current.value, count=1)
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
            while last_inverse.chained:
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
