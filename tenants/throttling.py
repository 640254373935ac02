"""Per-API-key rate limits on /api/v1/ and /integration/v1/ (SPEC §17), as a DRF throttle.

Every request authenticated with an API key counts against the key's own limit (`ApiKey.rate_limit`)
or, without one, `API_RATE_LIMIT`. The decision rides on the request so that `ApiErrorMiddleware` adds
the `RateLimit-*` headers to whatever response comes back; over the limit the view never runs and the
answer is 429 `{"error": "Rate limit exceeded"}` with `Retry-After`.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions, throttling

from tenants import ratelimit

RATE_LIMIT_EXCEEDED = "Rate limit exceeded"
SCOPE = "api-key"


class RateLimitExceeded(exceptions.APIException):
    """429 with exactly SPEC's message (DRF's Throttled appends its own sentence); DRF's handler turns
    `wait` into `Retry-After`."""

    status_code = 429
    default_detail = RATE_LIMIT_EXCEEDED
    default_code = "rate_limited"

    def __init__(self, wait: int) -> None:
        super().__init__()
        self.wait = wait


def limit_for(api_key) -> ratelimit.Limit:
    """The key's own limit, else the deployment's default."""
    if api_key.rate_limit:
        return ratelimit.Limit.parse(api_key.rate_limit)
    return ratelimit.Limit.from_setting("API_RATE_LIMIT", settings.API_RATE_LIMIT)


class ApiKeyRateThrottle(throttling.BaseThrottle):
    def allow_request(self, request, view) -> bool:
        api_key = getattr(request.auth, "api_key", None)
        if api_key is None:  # the admin's session, the widget: limited elsewhere or not at all
            return True
        decision = ratelimit.check(SCOPE, str(api_key.pk), limit_for(api_key))
        request._request.rate_limit_decision = decision
        if not decision.allowed:
            raise RateLimitExceeded(decision.reset)  # = retry_after when refused
        return True
