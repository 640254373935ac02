"""Fixed-window rate limits in the shared Django cache (Redis in production), so every process counts together.

`cache.add` creates the window's counter and `cache.incr` bumps it; both are atomic on Redis. (On the
database cache of a single machine `incr` is a read-then-write, so a burst may overshoot by a few.)
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int

    @classmethod
    def parse(cls, spec: str) -> Limit:
        """`"20/60"`: 20 hits per 60 seconds."""
        try:
            count, seconds = (int(part) for part in spec.split("/"))
        except ValueError:
            raise ImproperlyConfigured(f"rate limit must look like 20/60, got {spec!r}") from None
        if count < 1 or seconds < 1:
            raise ImproperlyConfigured(f"rate limit must be positive, got {spec!r}")
        return cls(count, seconds)


def _now() -> float:
    return time.time()


def hit(scope: str, identity: str, spec: str) -> int | None:
    """Count one hit; None when allowed, else the seconds until the window resets (for Retry-After)."""
    limit = Limit.parse(spec)
    now = _now()
    window = int(now // limit.seconds)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    key = f"rl:{scope}:{digest}:{window}"
    cache.add(key, 0, timeout=limit.seconds + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=limit.seconds + 1)
        count = 1
    if count <= limit.count:
        return None
    return max(1, int((window + 1) * limit.seconds - now + 0.999))
