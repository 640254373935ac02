"""Readiness checks for `/readyz`: can this process reach the database, the shared cache and the broker?

`/healthz` stays the cheap liveness check (the process answers and its database does); `/readyz` is
what a load balancer or an orchestrator asks before sending traffic, so each check is bounded in time
and a failure names the part that failed without quoting URLs or credentials.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from kombu import Connection as BrokerConnection

logger = logging.getLogger(__name__)

OK = "ok"


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_cache() -> None:
    # A round trip through the real backend (Redis or the cache table), not just a connection.
    key = f"readyz:{secrets.token_hex(8)}"
    cache.set(key, "1", timeout=10)
    try:
        if cache.get(key) != "1":
            raise RuntimeError("value written was not read back")
    finally:
        cache.delete(key)


def check_broker() -> None:
    timeout = settings.READYZ_BROKER_TIMEOUT_SECONDS
    with BrokerConnection(settings.CELERY_BROKER_URL, connect_timeout=timeout) as broker:
        # One attempt, bounded: a readiness probe must answer, not wait for the broker to come back.
        broker.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        broker.default_channel  # noqa: B018 — opening a channel is what proves the broker usable


CHECKS: dict[str, Callable[[], None]] = {"database": check_database, "cache": check_cache, "broker": check_broker}


def readiness() -> tuple[bool, dict[str, str]]:
    """Run every check; (all passed, {"database": "ok" | "<why it failed>", ...}).

    A failure's text is the exception's class and a short reason, never a URL (it may carry a password).
    """
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:
            results[name] = f"failed: {_reason(exc)}"
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
        else:
            results[name] = OK
    return all(value == OK for value in results.values()), results


def _reason(exc: Exception) -> str:
    # Driver messages can quote connection strings ("could not connect to postgres://user:pw@…"), so
    # only the error's type is shown; the log line above has the same, the operator has the settings.
    return type(exc).__name__
