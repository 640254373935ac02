"""`verify_identity`: what the caller stated against the call's metadata, on the server.

Values match when they are equal ignoring case, spaces and punctuation ("AB-12 34" = "ab1234"), or
when both are dates of the same day in any common spelling ("17 May 1990" = "1990-05-17" =
"05/17/1990"). Pure numbers are never read as dates ("1234" is an account suffix, not a year). After
MAX_ATTEMPTS failed attempts the conversation's verification is locked.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from dateutil import parser as date_parser

MAX_ATTEMPTS = 3
_NOT_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_DEFAULT_DAY = dt.datetime(2000, 1, 1)


def normalised(value: Any) -> str:
    return _NOT_ALNUM.sub("", str(value)).casefold()


def _days(value: Any) -> set[dt.date]:
    text = str(value).strip()
    if not text or text.isdigit() or len(text) > 40 or not re.search(r"\d", text):
        return set()
    days = set()
    for dayfirst in (False, True):
        try:
            days.add(date_parser.parse(text, dayfirst=dayfirst, default=_DEFAULT_DAY).date())
        except (ValueError, OverflowError):
            continue
    return days


def same_value(stated: Any, expected: Any) -> bool:
    """Whether the caller's `stated` value is the metadata's `expected` one (see the module docstring)."""
    if stated is None or expected is None or isinstance(stated, (dict, list)):
        return False
    left, right = normalised(stated), normalised(expected)
    if left and left == right:
        return True
    return bool(_days(stated) & _days(expected))


def check(keys: list[str], stated: dict[str, Any], metadata: dict[str, Any]) -> bool:
    """Every verification key stated and matching the metadata (a key the call lacks never matches)."""
    return all(key in metadata and same_value(stated.get(key), metadata.get(key)) for key in keys)
