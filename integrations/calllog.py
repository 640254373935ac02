"""The ApiCallLog: one redacted row per execution, and its retention purge."""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connections, models, router
from django.utils import timezone

from integrations.models import ApiCallLog
from integrations.results import ExecutionResult
from tenants.db import cursor_without_flush_wait

if TYPE_CHECKING:
    from integrations.models import Endpoint

PREVIEW_CHARS = 2000
PURGE_BATCH = 5000


def record(endpoint: Endpoint, result: ExecutionResult, trigger: str, *, actor: str = "") -> uuid.UUID:
    """Store the redacted request line and headers, the outcome and a truncated response preview.

    Returns the new row's id. Written with one prepared INSERT rather than `Model.save()`: this runs on
    every call and the ORM's per-save work was the largest part of the executor's own overhead.
    """
    prepared = result.request
    redactor = prepared.redactor if prepared else None
    preview = _preview(result.raw_text or "", redactor)
    row_id = uuid.uuid4()
    row = {
        "id": row_id,
        "tenant_id": endpoint.tenant_id,
        "endpoint_id": endpoint.pk,
        "endpoint_name": endpoint.name[:200],
        "trigger": str(trigger),
        "actor": actor,
        "method": str(endpoint.method),
        "url": redactor.url(prepared.url) if prepared and redactor else "",
        "request_headers": redactor.headers(prepared.headers) if prepared and redactor else {},
        "status": str(result.status),
        "status_code": result.status_code,
        "duration_ms": result.duration_ms,
        "attempts": result.attempts,
        "response_size": result.response_size,
        "cached": result.cached,
        "error": redactor.text(result.error or "") if redactor else (result.error or ""),
        "response_preview": preview,
        "created_at": result.started_at,
    }
    _insert(row)
    return row_id


def _preview(text: str, redactor) -> str:
    """The first PREVIEW_CHARS of the response, scrubbed *before* it is cut: a secret straddling the
    cut would otherwise survive as a prefix. Only the window that can reach the preview is scrubbed."""
    if redactor is None or not redactor.values:
        return text[:PREVIEW_CHARS]
    window = text[: PREVIEW_CHARS + len(redactor.values[0])]
    return redactor.text(window)[:PREVIEW_CHARS]


def _insert(row: dict) -> None:
    alias = router.db_for_write(ApiCallLog)
    connection = connections[alias]
    sql, fields = _insert_statement(connection.vendor, connection.ops.quote_name)
    params = [row[name] if convert is None else convert(row[name], connection) for name, convert in fields]
    # A log row on its own need not wait for the WAL flush (~1 ms+ per call).
    with cursor_without_flush_wait(connection) as cursor:
        cursor.execute(sql, params)


# Values of these field types go to the driver as they are; the others (UUID, JSON, datetime) are
# converted by the field for the backend.
PLAIN_FIELDS = (models.CharField, models.TextField, models.IntegerField, models.BooleanField)


@cache
def _insert_statement(vendor: str, quote_name) -> tuple[str, list]:
    fields = list(ApiCallLog._meta.concrete_fields)
    converters = [
        (f.attname, None if isinstance(f, PLAIN_FIELDS) and not f.is_relation else f.get_db_prep_save) for f in fields
    ]
    columns = ", ".join(quote_name(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    # Identifiers come from the model (quoted); values are parameters.
    return f"INSERT INTO {quote_name(ApiCallLog._meta.db_table)} ({columns}) VALUES ({placeholders})", converters  # noqa: S608


def purge_expired(now=None) -> int:
    """Delete rows older than API_CALL_LOG_RETENTION_DAYS, in batches; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.API_CALL_LOG_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(ApiCallLog.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:PURGE_BATCH])
        if not ids:
            return deleted
        deleted += ApiCallLog.objects.filter(pk__in=ids).delete()[0]
