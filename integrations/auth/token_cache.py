"""Tokens shared by every process: kept in the shared Django cache, fetched by one process at a time.

The cache is Redis in production and the database otherwise (settings.CACHES), so what is stored here
is seen by every web process and worker. Values are Fernet-encrypted with the field keys
(`settings.FERNET_KEYS`), so a token never sits in plain text in Redis or in the cache table.

Single flight: `obtain(key, fetch)` returns the cached token when it is still fresh; otherwise the
caller that wins `cache.add(<key>:lock)` (atomic in Redis, and in the database cache a unique-key
insert) runs `fetch()` and stores the result, while every other caller — in any thread or process —
polls the cache until the token appears. A failed fetch is published for the waiters of that round,
so N callers against a refusing token endpoint cost one request, not N; a failure of the provider
itself (`FetchFailed`: refused, unreachable, bad answer) is also remembered for `FAILURE_SECONDS`, so
callers arriving just after it do not stampede a struggling provider. The lock expires on its own
(`LOCK_SECONDS`) if its holder dies.

A token is used until shortly before it expires: 10 % of its lifetime early, at most 60 s early.
"""

from __future__ import annotations

import json
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.cache import cache

from integrations.auth.base import AuthorizationNeeded, CredentialUnavailable

LOCK_SECONDS = 30.0  # longer than one token request may take (its deadline is 15 s)
WAIT_SECONDS = 30.0  # how long a waiter polls before giving up
DEFAULT_LIFETIME = 3600  # a token that states no expiry is reused this long (and refetched on a 401)
EARLY_FRACTION = 0.1
EARLY_MAX_SECONDS = 60.0
FAILURE_SECONDS = 2


class FetchFailed(CredentialUnavailable):
    """The provider refused or failed a token request (remembered briefly, see the module docstring)."""


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.FERNET_KEYS])


def seal(data: Any) -> str:
    """`data` (JSON) encrypted with the first field key."""
    return _fernet().encrypt(json.dumps(data, separators=(",", ":")).encode()).decode("ascii")


def unseal(text: Any) -> Any:
    """The JSON sealed in `text`, or None when it is missing, not ours, or made with a retired key."""
    if not isinstance(text, str):
        return None
    try:
        return json.loads(_fernet().decrypt(text.encode("ascii")))
    except (InvalidToken, ValueError):
        return None


@dataclass
class Token:
    """What a credential type caches: `values` (e.g. access_token and token_type) and when to renew.

    `id` identifies one fetch, so a caller that saw this token rejected invalidates only this one and
    never a newer token another process has just stored.
    """

    values: dict
    expires_at: float | None = None
    renew_at: float | None = None
    issued_at: float = field(default_factory=time.time)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def issued(cls, values: dict, lifetime: float | None) -> Token:
        """A token obtained now that lives `lifetime` seconds (None: unknown → DEFAULT_LIFETIME)."""
        now = time.time()
        life = float(lifetime) if lifetime and lifetime > 0 else float(DEFAULT_LIFETIME)
        early = min(life * EARLY_FRACTION, EARLY_MAX_SECONDS)
        expires_at = now + life if lifetime and lifetime > 0 else None
        return cls(values=values, expires_at=expires_at, renew_at=now + life - early, issued_at=now)

    def fresh(self, now: float | None = None) -> bool:
        return self.renew_at is None or (now or time.time()) < self.renew_at

    def to_json(self) -> dict:
        return {"v": self.values, "exp": self.expires_at, "renew": self.renew_at, "at": self.issued_at, "id": self.id}

    @classmethod
    def from_json(cls, data: Any) -> Token | None:
        if not isinstance(data, dict) or not isinstance(data.get("v"), dict):
            return None
        return cls(
            values=data["v"],
            expires_at=data.get("exp"),
            renew_at=data.get("renew"),
            issued_at=data.get("at") or 0.0,
            id=str(data.get("id")),
        )


def get(key: str) -> Token | None:
    """The cached token under `key` when it is still fresh."""
    token = Token.from_json(unseal(cache.get(key)))
    return token if token is not None and token.fresh() else None


def put(key: str, token: Token) -> None:
    ttl = DEFAULT_LIFETIME if token.renew_at is None else token.renew_at - time.time()
    if ttl > 0:
        cache.set(key, seal(token.to_json()), timeout=max(1, math.ceil(ttl)))


def invalidate(key: str, token_id: str | None = None) -> None:
    """Forget the token under `key` — only if it is still the one `token_id` names, when given."""
    if token_id is not None:
        current = Token.from_json(unseal(cache.get(key)))
        if current is None or current.id != token_id:
            return
    cache.delete(key)


def obtain(key: str, fetch: Callable[[], Token], *, force: bool = False) -> Token:
    """The fresh token under `key`, fetched by exactly one caller at a time across all processes.

    `fetch()` returns a `Token` or raises `CredentialUnavailable`; with `force` the cached token is
    not used (the test console's "fetch one now").
    """
    started = time.time()
    if not force:
        token = get(key)
        if token is not None:
            return token
        _raise_published_failure(key, since=started - FAILURE_SECONDS, remembered_only=True)
    deadline = time.monotonic() + WAIT_SECONDS
    delay = 0.01
    while True:
        owner = uuid.uuid4().hex
        # Reading the lock back guards the database cache's one weak spot: two callers replacing the
        # same *expired* lock row can both see add() succeed; only one of them reads its own id.
        if cache.add(f"{key}:lock", owner, timeout=LOCK_SECONDS) and cache.get(f"{key}:lock") == owner:
            try:
                return _fetch_holding_lock(key, fetch, force=force, since=started)
            finally:
                _release(f"{key}:lock", owner)
        time.sleep(delay * random.uniform(0.5, 1.5))
        delay = min(delay * 2, 0.2)
        token = get(key)
        if token is not None and (not force or _newer(token, started)):
            return token
        _raise_published_failure(key, started)
        if time.monotonic() > deadline:
            raise CredentialUnavailable("timed out waiting for another process to obtain the token")


def _fetch_holding_lock(key: str, fetch: Callable[[], Token], *, force: bool, since: float) -> Token:
    token = get(key)
    if token is not None and (not force or _newer(token, since)):
        return token  # another caller stored it between our look and our lock
    _raise_published_failure(key, since)  # ...or failed to, and released the lock just before we took it
    try:
        token = fetch()
    except CredentialUnavailable as exc:
        failure = {
            "error": str(exc),
            "at": time.time(),
            "reconnect": isinstance(exc, AuthorizationNeeded),
            "remember": isinstance(exc, FetchFailed),
        }
        cache.set(f"{key}:failure", seal(failure), timeout=int(LOCK_SECONDS))
        raise
    put(key, token)
    return token


def _newer(token: Token, since: float) -> bool:
    return token.issued_at >= since


def _raise_published_failure(key: str, since: float, *, remembered_only: bool = False) -> None:
    """Raise the error of a fetch that failed after `since` (while we waited for it)."""
    failure = unseal(cache.get(f"{key}:failure"))
    if isinstance(failure, dict) and failure.get("at", 0) >= since:
        if remembered_only and not failure.get("remember"):
            return
        if failure.get("reconnect"):
            raise AuthorizationNeeded(failure.get("error", ""))
        raise FetchFailed(failure.get("error", "the token could not be obtained"))


def _release(lock_key: str, owner: str) -> None:
    # Delete only our own lock: after LOCK_SECONDS another caller may legitimately hold it.
    if cache.get(lock_key) == owner:
        cache.delete(lock_key)
