"""Template helpers: a registry of small pure functions over JSON values.

A helper receives the render (for the per-render clock), its positional arguments and its key=value
arguments, and returns a JSON value. Text arguments are converted as handlebars.js would (`to_text`),
hashes and encodings work on UTF-8. Add a helper with `register_helper(name, func, min_args, max_args)`.
"""

from __future__ import annotations

import base64 as base64_codec
import hashlib
import hmac
import uuid as _uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from .values import get_property, is_falsy, property_key, to_text


class HelperRender(Protocol):
    def now(self) -> datetime: ...


HelperFunc = Callable[[HelperRender, list[Any], dict[str, Any]], Any]

# The names the renderer implements itself as block helpers; they cannot be replaced.
BLOCK_HELPERS = frozenset({"if", "unless", "each", "with"})


@dataclass(frozen=True, slots=True)
class Helper:
    func: HelperFunc
    min_args: int
    max_args: int


def utcnow() -> datetime:
    """The clock of `now_iso` / `now_unix` (read once per render, so one render sees one instant)."""
    return datetime.now(UTC)


def _hmac_sha256(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> str:
    key, message = (to_text(a).encode() for a in args)
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _sha256(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> str:
    return hashlib.sha256(to_text(args[0]).encode()).hexdigest()


def _base64(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> str:
    return base64_codec.b64encode(to_text(args[0]).encode()).decode("ascii")


def _urlencode(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> str:
    # Everything but RFC 3986's unreserved characters is percent-encoded (UTF-8), spaces as %20.
    return quote(to_text(args[0]), safe="")


def _now_iso(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> str:
    return render.now().strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_unix(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> int:
    return int(render.now().timestamp())


def _uuid4(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> str:
    return str(_uuid.uuid4())


def _lookup(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> Any:
    obj, field = args
    if is_falsy(obj):
        return obj
    return get_property(obj, property_key(field))


HELPERS: dict[str, Helper] = {
    "hmac_sha256": Helper(_hmac_sha256, 2, 2),
    "sha256": Helper(_sha256, 1, 1),
    "base64": Helper(_base64, 1, 1),
    "urlencode": Helper(_urlencode, 1, 1),
    "now_iso": Helper(_now_iso, 0, 0),
    "now_unix": Helper(_now_unix, 0, 0),
    "uuid": Helper(_uuid4, 0, 0),
    "lookup": Helper(_lookup, 2, 2),
}


def register_helper(name: str, func: HelperFunc, min_args: int = 0, max_args: int = 0) -> None:
    """Add (or replace) a helper; compiled templates are recompiled so they see it."""
    if name in BLOCK_HELPERS:
        raise ValueError(f"{name} is a built-in block helper")
    HELPERS[name] = Helper(func, min_args, max_args)
    from .runtime import compile_template

    compile_template.cache_clear()
