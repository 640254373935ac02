"""Operational tasks."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from tenants import ratelimit
from tenants.tasks_support import PERIODIC

HEARTBEAT_KEY = "worker:heartbeat"


@shared_task(name="tenants.heartbeat", **PERIODIC)
def heartbeat(nonce: str = "") -> str:
    """Proves a worker is consuming: stamps the shared cache (the health check and tests read it).

    Periodic and idempotent (a later stamp replaces an earlier one): acked on start, never redelivered.
    """
    stamp = timezone.now().isoformat()
    cache.set(HEARTBEAT_KEY, stamp, timeout=None)
    if nonce:
        cache.set(f"{HEARTBEAT_KEY}:{nonce}", stamp, timeout=3600)
    return stamp


@shared_task(name="tenants.purge_rate_limit_counters", **PERIODIC)
def purge_rate_limit_counters() -> int:
    """Deletes the database rate-limit counters of windows that have ended (none when Redis holds them)."""
    return ratelimit.purge_expired()
