"""Fixed-window rate limits shared by every process: API keys (SPEC §17) and the chat widget (SPEC §6).

Counts are exact across processes and machines. With Redis as the shared cache (`REDIS_URL`) a window's
counter is a Redis key bumped with the atomic INCR; without it, a row of `RateLimitCounter` bumped with
one `INSERT … ON CONFLICT DO UPDATE … RETURNING` statement, atomic on PostgreSQL and SQLite alike (the
database cache's own `incr` is a read-then-write, so a burst from two processes would overshoot).
Expired counter rows are deleted by the periodic `tenants.purge_rate_limit_counters` job.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connection
from redis.exceptions import NoScriptError

from tenants.db import cursor_without_flush_wait

# The table of `tenants.models.RateLimitCounter`, written with raw SQL here (the ORM has no upsert that
# returns the new value).
COUNTER_TABLE = "tenants_ratelimitcounter"
MAX_COUNT = 1_000_000
MAX_SECONDS = 86_400


@dataclass(frozen=True)
class Limit:
    count: int
    seconds: int

    @classmethod
    def parse(cls, spec: str) -> Limit:
        """`"20/60"`: 20 hits per 60 seconds. Raises ValueError with a message fit for a form."""
        try:
            count, seconds = (int(part.strip()) for part in str(spec).split("/"))
        except ValueError:
            raise ValueError(f"A rate limit looks like 600/60 (requests/seconds), not {spec!r}") from None
        if not (1 <= count <= MAX_COUNT and 1 <= seconds <= MAX_SECONDS):
            raise ValueError(f"A rate limit allows 1 to {MAX_COUNT} requests per 1 to {MAX_SECONDS} seconds")
        return cls(count, seconds)

    @classmethod
    def from_setting(cls, name: str, spec: str) -> Limit:
        try:
            return cls.parse(spec)
        except ValueError as exc:
            raise ImproperlyConfigured(f"{name}: {exc}") from None

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds}"


def validate_spec(value: str) -> None:
    """The model-field validator of a rate-limit override (admin and REST alike)."""
    if value:
        try:
            Limit.parse(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


@dataclass(frozen=True)
class Decision:
    """The outcome of one counted hit, with what the `RateLimit-*` headers report."""

    allowed: bool
    limit: Limit
    remaining: int
    reset: int  # whole seconds until the window resets

    @property
    def retry_after(self) -> int | None:
        return None if self.allowed else self.reset

    def headers(self) -> dict[str, str]:
        """IETF draft RateLimit header fields (limit, remaining, seconds to reset, and the policy)."""
        return {
            "RateLimit-Limit": str(self.limit.count),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": f"{self.limit.count};w={self.limit.seconds}",
        }


def _now() -> float:
    return time.time()


def check(scope: str, identity: str, limit: Limit) -> Decision:
    """Count one hit of `identity` in `scope` against `limit` and say whether it is allowed."""
    now = _now()
    window = int(now // limit.seconds)
    window_ends = (window + 1) * limit.seconds
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    count = _increment(f"rl:{scope}:{digest}:{limit.seconds}:{window}", window_ends)
    reset = max(1, math.ceil(window_ends - now))
    return Decision(allowed=count <= limit.count, limit=limit, remaining=max(0, limit.count - count), reset=reset)


def hit(scope: str, identity: str, spec: str) -> int | None:
    """Count one hit; None when allowed, else the seconds until the window resets (for Retry-After)."""
    return check(scope, identity, Limit.from_setting(scope, spec)).retry_after


def _increment(key: str, expires_at: float) -> int:
    if isinstance(caches["default"], RedisCache):
        return _increment_in_redis(key, expires_at)
    return _increment_in_database(key, expires_at)


# INCR, and on a window's first hit EXPIRE (what is left of the window + 1 s), as one atomic script:
# one command and one reply per hit. (Django's cache API would take three round trips — add, exists,
# incr — and a MULTI/EXEC pipeline four commands and four replies for the same count.)
_INCREMENT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


class _RedisCounter:
    """The script's `EVALSHA` on one connection of a cache backend's pool, kept by that backend (each
    thread has its own): a hit is one packed command written and one reply read — redis-py's
    `Connection` API — without the client's per-command path (the pool's check-out, the retry
    wrapper, the reply callbacks, its instrumentation hooks), which cost more than the round trip's
    own CPU on every API request. What that path would do on a failure is done here:

    - the server forgot the script (a restart, SCRIPT FLUSH: NOSCRIPT): load it, send once more;
    - the connection was found closed (a restart, an idle timeout, CLIENT KILL): reconnect, send once
      more, as the client's retry would (a connection lost after the server ran the command would
      count that hit twice: the same trade);
    - a timeout is raised, not retried (the hit may have counted). The connection drops itself on
      any failed write or read, so a late reply is never read as the next command's.
    """

    def __init__(self, pool_client: Any) -> None:
        self.pid = os.getpid()  # a forked child makes its own: a shared socket would mix up replies
        self.connection = pool_client._get_connection_pool(write=True).make_connection()
        self.sha = hashlib.sha1(_INCREMENT_SCRIPT.encode(), usedforsecurity=False).hexdigest()  # Redis's name

    def increment(self, key: str, ttl: int) -> int:
        connection = self.connection
        loaded = reconnected = False
        while True:  # at most three sends: once more after a NOSCRIPT, once more after a closed connection
            try:
                connection.send_packed_command(connection.pack_command("EVALSHA", self.sha, 1, key, ttl), False)
                return int(connection.read_response())
            except NoScriptError:
                if loaded:
                    raise
                loaded = True
                connection.send_packed_command(connection.pack_command("SCRIPT", "LOAD", _INCREMENT_SCRIPT), False)
                sha = connection.read_response()
                self.sha = sha.decode() if isinstance(sha, bytes) else sha
            except redis.ConnectionError:
                if reconnected:
                    raise
                reconnected = True


# One counter per cache backend client (RedisCache's RedisCacheClient), made on first use.
_counters: weakref.WeakKeyDictionary[Any, _RedisCounter] = weakref.WeakKeyDictionary()


def _increment_in_redis(key: str, expires_at: float) -> int:
    backend = caches["default"]
    redis_key = backend.make_and_validate_key(key)
    pool_client = backend._cache  # type: ignore[attr-defined]  # RedisCache's RedisCacheClient
    counter = _counters.get(pool_client)
    if counter is None or counter.pid != os.getpid():
        counter = _counters[pool_client] = _RedisCounter(pool_client)
    return counter.increment(redis_key, max(1, math.ceil(expires_at - _now())) + 1)


def _increment_in_database(key: str, expires_at: float) -> int:
    table, key_column, count = (connection.ops.quote_name(n) for n in (COUNTER_TABLE, "key", "count"))
    expires = _db_time(expires_at + 1)
    sql = (
        f"INSERT INTO {table} ({key_column}, {count}, expires_at) VALUES (%s, 1, %s) "  # noqa: S608 — names are ours
        f"ON CONFLICT ({key_column}) DO UPDATE SET {count} = {table}.{count} + 1 RETURNING {count}"
    )
    # A count lost in a database crash only lets a few requests more through: no WAL flush wait.
    with cursor_without_flush_wait(connection) as cursor:
        cursor.execute(sql, [key, expires])
        return cursor.fetchone()[0]


def purge_expired() -> int:
    """Delete the database counters of windows that have ended; returns how many."""
    table = connection.ops.quote_name(COUNTER_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE expires_at < %s", [_db_time(_now())])  # noqa: S608
        return cursor.rowcount


def _db_time(unix: float) -> Any:
    # The ORM's own conversion (naive UTC text on SQLite, an aware datetime on PostgreSQL).
    return connection.ops.adapt_datetimefield_value(datetime.fromtimestamp(unix, UTC))
