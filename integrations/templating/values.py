"""JavaScript semantics over plain JSON data: text conversion, truthiness and own-property lookup.

Handlebars runs on JavaScript values; we run on what `json.loads` produces (dict, list, str, int, float,
bool, None). These functions give those values the meaning handlebars.js gives the same JSON, so a
template renders the same text here and in handlebars.js. Lookup reads dict keys, list indices and the
`length` of lists and strings — never a Python attribute, never a method.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from .errors import TemplateError

MAX_NESTING = 100


class _Undefined:
    """JavaScript's `undefined`: a key that is not there (JSON `null` is Python `None`, a real value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()


def is_nullish(value: Any) -> bool:
    return value is None or value is UNDEFINED


def js_number(value: float) -> str:
    """Number.prototype.toString for a float: `1.0` → `1`, `1e21` → `1e+21`, `1.5e-7` → `1.5e-7`."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    sign, digits_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digits_tuple))
    k = len(digits)
    n = k + int(exponent)  # value = 0.d1d2…dk * 10**n
    prefix = "-" if sign else ""
    if k <= n <= 21:
        return prefix + digits + "0" * (n - k)
    if 0 < n <= 21:
        return prefix + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return prefix + "0." + "0" * (-n) + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    e = n - 1
    return f"{prefix}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def js_int(value: int) -> str:
    # Integers keep full precision (JavaScript would round past 2**53); huge ones switch to exponent form.
    if -(10**21) < value < 10**21:
        return str(value)
    return js_number(float(value))


def to_text(value: Any, depth: int = 0) -> str:
    """String(value) as handlebars.js appends it: null/undefined → "", arrays joined with ","."""
    if value is None or value is UNDEFINED:
        return ""
    kind = type(value)
    if kind is str:
        return value
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return js_int(value)
    if kind is float:
        return js_number(value)
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, list | tuple):
        if depth > MAX_NESTING:
            raise TemplateError("value nested too deeply to render")
        return ",".join(to_text(item, depth + 1) for item in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return js_int(int(value))
    if isinstance(value, float):
        return js_number(float(value))
    # Anything else a caller put in the context (Decimal, UUID, datetime) is shown as its text.
    return str(value)


def property_key(value: Any) -> str:
    """ToPropertyKey for a `lookup` field: `1` → "1", `undefined` → "undefined"."""
    if value is UNDEFINED:
        return "undefined"
    if value is None:
        return "null"
    return to_text(value)


def is_falsy(value: Any) -> bool:
    """JavaScript falsiness: undefined, null, false, 0, NaN and "" (an empty list is truthy)."""
    if value is None or value is UNDEFINED or value is False:
        return True
    kind = type(value)
    if kind is str:
        return not value
    if kind is int or kind is float:
        return value == 0 or value != value
    return False


def is_empty(value: Any) -> bool:
    """Handlebars' isEmpty: falsy but not 0, or an empty array."""
    if isinstance(value, list | tuple):
        return not value
    return is_falsy(value) and not (type(value) in (int, float) and value == 0)


def _array_index(key: str, length: int) -> int | None:
    if not key.isdigit() or not key.isascii() or (len(key) > 1 and key[0] == "0"):
        return None
    index = int(key)
    return index if index < length else None


def get_property(obj: Any, key: str) -> Any:
    """An own property of a JSON value, as handlebars.js' lookupProperty reads it; else UNDEFINED."""
    if isinstance(obj, dict):
        return obj.get(key, UNDEFINED)
    if isinstance(obj, list | tuple):
        if key == "length":
            return len(obj)
        index = _array_index(key, len(obj))
        return UNDEFINED if index is None else obj[index]
    if isinstance(obj, str):
        if key == "length":
            return len(obj.encode("utf-16-le")) // 2
        index = _array_index(key, len(obj))
        return UNDEFINED if index is None else obj[index]
    return UNDEFINED


def object_keys(obj: dict) -> list:
    """Object.keys order: integer-like keys ascending first, then the others in insertion order."""
    keys = list(obj)
    numeric = [k for k in keys if isinstance(k, str) and _array_index(k, 2**32 - 1) is not None]
    if not numeric:
        return keys
    numeric.sort(key=int)
    numeric_set = set(numeric)
    return numeric + [k for k in keys if k not in numeric_set]


def same_value(a: Any, b: Any) -> bool:
    """Whether handlebars.js would consider a block's new context the same as the current one."""
    if a is b:
        return True
    if isinstance(a, dict | list | tuple) or isinstance(b, dict | list | tuple):
        return False
    return type(a) is type(b) and a == b


def to_json(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of a value: undefined and non-finite numbers become null, other types text."""
    if depth > MAX_NESTING:
        raise TemplateError("value nested too deeply to render")
    if value is None or value is UNDEFINED:
        return None
    kind = type(value)
    if kind is str or kind is bool or kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): to_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v, depth + 1) for v in value]
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    return str(value)
