"""Operational tasks."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

HEARTBEAT_KEY = "worker:heartbeat"


@shared_task(name="tenants.heartbeat")
def heartbeat(nonce: str = "") -> str:
    """Proves a worker is consuming: stamps the shared cache (the health check and tests read it)."""
    stamp = timezone.now().isoformat()
    cache.set(HEARTBEAT_KEY, stamp, timeout=None)
    if nonce:
        cache.set(f"{HEARTBEAT_KEY}:{nonce}", stamp, timeout=3600)
    return stamp
