"""The ApiCallLog: one redacted row per execution, and its retention purge."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

from integrations.models import ApiCallLog

if TYPE_CHECKING:
    from integrations.executor import ExecutionResult
    from integrations.models import Endpoint

PREVIEW_CHARS = 2000
PURGE_BATCH = 5000


def record(endpoint: Endpoint, result: ExecutionResult, trigger: str) -> ApiCallLog:
    """Store the redacted request line and headers, the outcome and a truncated response preview."""
    prepared = result.request
    redactor = prepared.redactor if prepared else None
    preview = result.raw_text[:PREVIEW_CHARS] if result.raw_text else ""
    log = ApiCallLog(
        tenant_id=endpoint.tenant_id,
        endpoint=endpoint,
        endpoint_name=endpoint.name[:200],
        trigger=trigger,
        method=endpoint.method,
        url=redactor.url(prepared.url) if prepared else "",
        request_headers=redactor.headers(prepared.headers) if prepared else {},
        status=result.status,
        status_code=result.status_code,
        duration_ms=result.duration_ms,
        attempts=result.attempts,
        response_size=result.response_size,
        cached=result.cached,
        error=redactor.text(result.error or "") if redactor else (result.error or ""),
        response_preview=redactor.text(preview) if redactor else preview,
        created_at=result.started_at,
    )
    log.save(force_insert=True)
    return log


def purge_expired(now=None) -> int:
    """Delete rows older than API_CALL_LOG_RETENTION_DAYS, in batches; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.API_CALL_LOG_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(ApiCallLog.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:PURGE_BATCH])
        if not ids:
            return deleted
        deleted += ApiCallLog.objects.filter(pk__in=ids).delete()[0]
