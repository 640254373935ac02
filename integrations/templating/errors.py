"""The one error a template can raise, with where in the template it happened."""

from __future__ import annotations


class TemplateError(ValueError):
    """A template that cannot be compiled or rendered; `str()` is a message fit for a user.

    `line` and `column` (1-based) point into the template when the problem has a place there.
    """

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        self.message = message
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(where + message)


def position(source: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of an offset in a template."""
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column


def error_at(source: str, offset: int, message: str) -> TemplateError:
    line, column = position(source, offset)
    return TemplateError(message, line=line, column=column)
