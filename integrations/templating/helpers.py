"""Template helpers: a registry of small pure functions over JSON values.

A helper receives the render (for the per-render clock), its positional arguments and its key=value
arguments, and returns a JSON value. Text arguments are converted as handlebars.js would (`to_text`),
hashes and encodings work on UTF-8. Add a helper with `templating.register_helper(name, func, min_args,
max_args)`, which also drops the compiled templates (the runtime's cache, above this module).
"""

from __future__ import annotations

import base64 as base64_codec
import hashlib
import hmac
import uuid as _uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import TemplateError
from .values import get_property, is_falsy, property_key, to_text

_TZ_ONLY = frozenset({"tz"})
MAX_DATE_FORMAT_CHARS = 100


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


def _zone(hash_: dict[str, Any]) -> tzinfo | None:
    """The zone of a `tz="Asia/Kolkata"` argument (None: UTC); an unknown name is a TemplateError."""
    name = hash_.get("tz")
    if name is None or name == "":
        return None
    try:
        return ZoneInfo(to_text(name))
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a folder name such as America
        raise TemplateError(f"unknown time zone {to_text(name)!r} (use an IANA name such as Asia/Kolkata)") from None


def _check_hash(name: str, hash_: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(hash_) - allowed)
    if unknown:
        raise TemplateError(f"helper {name!r} takes no argument named {', '.join(unknown)}")


def _now_iso(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> str:
    _check_hash("now_iso", hash_, _TZ_ONLY)
    zone = _zone(hash_)
    if zone is None:
        return render.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return render.now().astimezone(zone).isoformat(timespec="seconds")


def _parse_moment(value: Any) -> datetime | None:
    """A date or date-time from ISO 8601 text (or Unix seconds); naive values are read as UTC."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = to_text(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _format_date(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> str:
    # {{format_date value "%d/%m/%Y" tz="Asia/Kolkata"}}; no value but a format: the current time.
    _check_hash("format_date", hash_, _TZ_ONLY)
    value = args[0] if args else None
    fmt = to_text(args[1]) if len(args) > 1 else "%Y-%m-%d"
    if len(fmt) > MAX_DATE_FORMAT_CHARS:
        raise TemplateError(f"format_date: the format is longer than {MAX_DATE_FORMAT_CHARS} characters")
    moment = render.now() if value is None or value == "" else _parse_moment(value)
    if moment is None:
        return ""  # like a missing variable: an unreadable date renders empty rather than failing the request
    zone = _zone(hash_)
    if zone is not None:
        moment = moment.astimezone(zone)
    try:
        return moment.strftime(fmt)
    except ValueError as exc:
        raise TemplateError(f"format_date: {exc}") from None


def _eq(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> bool:
    # Compared as JSON values, except that a number and its text form are equal ({{eq row.count "3"}}):
    # dataset columns arrive as text.
    left, right = args
    if left == right and type(left) is type(right):
        return True
    if isinstance(left, (bool, dict, list)) or isinstance(right, (bool, dict, list)):
        return left == right
    if left is None or right is None:
        return False
    return to_text(left) == to_text(right)


def _default(render: HelperRender, args: list[Any], hash_: dict[str, Any]) -> Any:
    # {{default extracted.preferred_time "any time"}}: the first argument unless it is empty/null/false.
    value, fallback = args
    return fallback if is_falsy(value) else value


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
    "format_date": Helper(_format_date, 0, 2),
    "eq": Helper(_eq, 2, 2),
    "default": Helper(_default, 2, 2),
    "uuid": Helper(_uuid4, 0, 0),
    "lookup": Helper(_lookup, 2, 2),
}
