"""Periodic work of the integrations app: thin adapters over services, sent by beat.

Its job is a sweep over the database and idempotent, so it runs with `PERIODIC` options (acked on
start, never redelivered; see tenants.tasks_support): beat's next tick is its retry.
"""

from __future__ import annotations

from celery import shared_task

from integrations import calllog
from tenants.tasks_support import PERIODIC


@shared_task(name="integrations.purge_api_call_logs", **PERIODIC)
def purge_api_call_logs() -> int:
    """Retention: drop API call logs older than API_CALL_LOG_RETENTION_DAYS (idempotent)."""
    return calllog.purge_expired()
