"""Periodic work of the integrations app."""

from __future__ import annotations

from celery import shared_task

from integrations import calllog


@shared_task(name="integrations.purge_api_call_logs")
def purge_api_call_logs() -> int:
    """Retention: drop API call logs older than API_CALL_LOG_RETENTION_DAYS (idempotent)."""
    return calllog.purge_expired()
