"""Periodic work of the integrations app: thin adapters over services, sent by beat.

Both jobs are sweeps over the database and idempotent, so they run with `PERIODIC` options (acked on
start, never redelivered; see tenants.tasks_support): beat's next tick is their retry.
"""

from __future__ import annotations

from celery import shared_task

from integrations import calllog
from integrations.auth import token_refresh
from tenants.tasks_support import PERIODIC


@shared_task(name="integrations.purge_api_call_logs", **PERIODIC)
def purge_api_call_logs() -> int:
    """Retention: drop API call logs older than API_CALL_LOG_RETENTION_DAYS (idempotent)."""
    return calllog.purge_expired()


@shared_task(name="integrations.refresh_oauth_tokens", **PERIODIC)
def refresh_oauth_tokens() -> dict[str, int]:
    """Refresh authorization-code grants expiring within OAUTH_REFRESH_AHEAD_MINUTES (idempotent, safe
    to run concurrently: one refresh per grant under the token cache's single-flight lock)."""
    return token_refresh.refresh_due_grants().as_dict()
