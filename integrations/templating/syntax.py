"""The syntax tree of a template, shaped like handlebars.js' AST so its visitors port line for line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class PathExpr:
    data: bool
    depth: int
    parts: tuple[str, ...]
    original: str
    scoped: bool
    pos: int

    @property
    def display(self) -> str:
        """The path as a user wrote it, for messages and the missing-variable list."""
        return "../" * self.depth + ("@" if self.data else "") + (".".join(self.parts) or "this")


@dataclass(slots=True)
class Literal:
    value: Any
    original: Any
    pos: int


@dataclass(slots=True)
class Call:
    """A helper name (or path) with its parameters and hash, as in `{{name a b k=v}}` or `(name a)`."""

    path: PathExpr | Literal
    params: list[Any]
    hash: dict[str, Any] | None
    pos: int
    is_subexpr: bool = False
    block_params: tuple[str, ...] = ()


@dataclass(slots=True)
class Content:
    value: str
    original: str
    pos: int
    left_stripped: bool = False
    right_stripped: bool = False


@dataclass(slots=True)
class Comment:
    strip: tuple[bool, bool]
    pos: int


@dataclass(slots=True)
class Mustache:
    call: Call
    strip: tuple[bool, bool]
    pos: int


@dataclass(slots=True)
class Program:
    body: list[Any]
    chained: bool = False


@dataclass(slots=True)
class Block:
    call: Call
    program: Program | None
    inverse: Program | None
    open_strip: tuple[bool, bool]
    inverse_strip: tuple[bool, bool] | None
    close_strip: tuple[bool, bool] | None
    pos: int
