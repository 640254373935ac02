"""Request-body JSON for every API (DRF's parser and the widget's): limits the database and Python impose.

- Nesting deeper than MAX_JSON_DEPTH is refused: Python's recursion limit (parsing, saving, rendering)
  must not turn a body into a 500.
- Every number must be finite: `1e999` parses to infinity, which neither JSON columns nor JSON
  responses can hold (a 500 at save or render time).
- No string may contain NUL (U+0000): PostgreSQL stores it neither in text nor in jsonb, so it would
  fail at save time (a 500), and only there, not on SQLite. DRF's CharField refuses it the same way.

Its own module: DRF reads DEFAULT_PARSER_CLASSES while defining APIView, so this imports no views.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rest_framework import exceptions, parsers

MAX_JSON_DEPTH = 64
NOT_FINITE = "numbers must be finite (1e999 overflows to infinity)"
TOO_DEEP = f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
NUL_CHARACTER = "strings may not contain NUL (\\u0000) characters"


class RequestJSONRefused(ValueError):
    """Valid JSON this API does not accept (the message says why)."""


def check_request_json(value: Any) -> Any:
    """`value` unchanged, or RequestJSONRefused when it nests too deeply, holds a NUL character or a
    number that is not finite."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise RequestJSONRefused(NUL_CHARACTER)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise RequestJSONRefused(NOT_FINITE)
        elif isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise RequestJSONRefused(TOO_DEEP)
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


def loads_request_json(raw: bytes | str) -> Any:
    """`json.loads` for a request body: ValueError when malformed, RequestJSONRefused (a ValueError too)
    when refused by `check_request_json`."""
    try:
        return check_request_json(json.loads(raw))
    except RecursionError:
        raise RequestJSONRefused(TOO_DEEP) from None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser plus `check_request_json` (DRF turns only a ValueError into a 400)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return check_request_json(super().parse(stream, media_type, parser_context))
        except RecursionError:
            raise exceptions.ParseError(TOO_DEEP) from None
        except RequestJSONRefused as exc:
            raise exceptions.ParseError(str(exc)) from None
