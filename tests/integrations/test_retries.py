"""The one backoff formula (integrations.retries), used by the executor and the AI provider."""

from __future__ import annotations

import pytest

from integrations import http, retries
from integrations.executor import execute
from integrations.models import ErrorPolicy

POLICY = {
    "max_retries": 3,
    "base_delay": 1.0,
    "max_delay": 30.0,
    "retry_statuses": [429, 503],
    "retry_on_connection_errors": True,
}


class Answer:
    def __init__(self, status_code: int, retry_after: str | None = None) -> None:
        self.status_code = status_code
        self.headers = {"retry-after": retry_after} if retry_after is not None else {}


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.5, 1.0), (2, 1.0, 2.0), (3, 2.0, 4.0)])
def test_backoff_is_exponential_with_equal_jitter(attempt, low, high):
    delays = {retries.backoff_delay(attempt, base_delay=1.0, max_delay=30.0) for _ in range(50)}
    assert all(low <= delay <= high for delay in delays)
    assert len(delays) > 1  # jittered


def test_retry_after_wins_and_max_delay_caps():
    assert retries.backoff_delay(1, base_delay=1.0, max_delay=30.0, response=Answer(429, "7")) == 7
    assert retries.backoff_delay(1, base_delay=1.0, max_delay=2.0, response=Answer(429, "7")) == 2


def test_what_is_retryable():
    assert retries.retryable(POLICY, "POST", Answer(503), None)
    assert not retries.retryable(POLICY, "POST", Answer(500), None)
    assert retries.retryable(POLICY, "POST", Answer(500), None, any_error=True)
    assert not retries.retryable(POLICY, "POST", Answer(204), None, any_error=True)  # a success
    assert retries.retryable(POLICY, "GET", None, http.RequestTimeout("slow"))
    assert not retries.retryable(POLICY, "POST", None, http.RequestTimeout("slow"))  # may have been processed
    assert retries.retryable(POLICY, "POST", None, http.RequestTimeout("slow"), any_error=True)
    refused = http.DestinationNotAllowed("private address")
    assert not retries.retryable(POLICY, "GET", None, refused, any_error=True)  # nothing was sent


def test_next_delay_stops_when_no_retries_are_left():
    assert retries.next_delay(POLICY, "GET", Answer(503), None, attempt=4, retries_left=0) is None
    assert retries.next_delay(POLICY, "GET", Answer(503, "3"), None, attempt=1, retries_left=3) == 3


def test_execute_refuses_an_unknown_error_policy(make_endpoint):
    with pytest.raises(ValueError, match="unknown error policy"):
        execute(make_endpoint(path="/json"), on_error="sometimes")


def test_execute_with_retry_retries_any_error_within_the_policy(make_endpoint, make_connection, http_server):
    connection = make_connection(retry={"max_retries": 2, "base_delay": 0.001, "max_delay": 0.01})
    endpoint = make_endpoint(connection, path="/status/500")

    plain = execute(endpoint)
    retried = execute(endpoint, on_error=ErrorPolicy.RETRY)

    assert (plain.attempts, retried.attempts) == (1, 3)
    assert retried.status == "error" and retried.status_code == 500
    assert http_server.count("/status/500") == 4
