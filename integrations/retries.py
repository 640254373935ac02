"""When to try an outgoing request again, and how long to wait first: one formula for the platform.

The executor's retry loop decides with `next_delay()` (the connection's policy: retryable statuses and
connection errors, exponential backoff with equal jitter, a server's `Retry-After`, `max_delay`); the
AI provider waits with the same `backoff_delay()`.
"""

from __future__ import annotations

import random
from typing import Any

from integrations import http

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def backoff_delay(attempt: int, *, base_delay: float, max_delay: float, response: Any = None) -> float:
    """Seconds to wait after attempt number `attempt` (1 for the first) before the next one.

    Exponential backoff with "equal jitter" (never less than half the backoff, so concurrent callers
    spread out without retrying at once); a `Retry-After` on `response` wins; capped at `max_delay`.
    """
    backoff = base_delay * (2 ** (attempt - 1))
    delay = random.uniform(backoff / 2, backoff)
    if response is not None:
        after = http.parse_retry_after(response.headers.get("retry-after"))
        if after is not None:
            delay = after
    return min(delay, max_delay)


def retryable(
    policy: dict[str, Any], method: str, response: Any, failure: Exception | None, *, any_error: bool = False
) -> bool:
    """Whether this outcome may be tried again under the connection's `policy`.

    A connection error is retryable when the policy allows it, a timeout only for an idempotent
    `method` (the first request may have been processed); a response when its status is one of
    `retry_statuses`. `any_error` (a rule's or step's `on_error: retry`) widens that to every
    non-2xx status and every error that happened after sending.
    """
    if failure is not None:
        if getattr(failure, "refused", False):  # nothing was sent: trying again changes nothing
            return False
        if any_error:
            return True
        return policy["retry_on_connection_errors"] and (
            isinstance(failure, http.ConnectionFailed)
            or (isinstance(failure, http.RequestTimeout) and method in IDEMPOTENT_METHODS)
        )
    if any_error:
        return not 200 <= response.status_code < 300
    return response.status_code in policy["retry_statuses"]


def next_delay(
    policy: dict[str, Any],
    method: str,
    response: Any,
    failure: Exception | None,
    *,
    attempt: int,
    retries_left: int,
    any_error: bool = False,
) -> float | None:
    """Seconds to wait before trying again after attempt number `attempt`, or None when this outcome is final.

    `retries_left` is what remains of the policy's `max_retries` (a re-authenticated attempt does not
    use one up).
    """
    if retries_left <= 0 or not retryable(policy, method, response, failure, any_error=any_error):
        return None
    return backoff_delay(attempt, base_delay=policy["base_delay"], max_delay=policy["max_delay"], response=response)
