"""Domain errors: what went wrong, as a code and one public sentence — never an HTTP status.

Services raise `DomainError` (or a subclass) with an `ErrorCode`; the API layer maps codes to statuses
(`tenants.api.STATUS_BY_CODE`), so services, tasks and the admin share them without learning HTTP.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    INVALID = "invalid"  # the input is malformed or breaks a rule
    UNAUTHENTICATED = "unauthenticated"  # no valid key, session or token
    FORBIDDEN = "forbidden"  # known caller, but this is not allowed (yet)
    NOT_FOUND = "not_found"  # no such object for this tenant (another tenant's reads the same)
    CONFLICT = "conflict"  # the current state forbids it: in use, needs confirmation
    MISMATCH = "mismatch"  # a repeated request that does not match the first one
    TOO_LARGE = "too_large"  # the input is over a size limit
    UNSUPPORTED_FORMAT = "unsupported_format"  # the input is not in a format we read
    RATE_LIMITED = "rate_limited"  # too many requests; `retry_after` seconds
    UNAVAILABLE = "unavailable"  # a service this needs (the shared cache) is down; `retry_after` seconds


class DomainError(Exception):
    """A refusal with a `code`, the public `message`, and extra public fields for the error body."""

    code: ErrorCode = ErrorCode.INVALID

    def __init__(self, message: str, *, code: ErrorCode | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """The public error shape: `{"error": message, **extra}`."""
        return {"error": self.message, **self.extra}


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND

    def __init__(self, message: str = "Not found.", **extra: Any) -> None:
        super().__init__(message, **extra)


class ServiceUnavailable(DomainError):
    """A service the request needs (the shared cache) cannot be reached now: the request may be sent
    again unchanged after `retry_after` seconds."""

    code = ErrorCode.UNAVAILABLE
    retry_after = 5

    def __init__(self) -> None:
        super().__init__("Service temporarily unavailable; try again shortly")
