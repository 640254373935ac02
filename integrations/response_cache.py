"""Caching of safe-method responses in the shared Django cache (`Endpoint.cache_ttl`).

The key covers the tenant, the endpoint (and its last change), the final URL and every request header
(hashed, so no secret lands in a key); only successful responses are stored.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from django.core.cache import cache

if TYPE_CHECKING:
    from integrations.models import Endpoint
    from integrations.rendering import PreparedRequest

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
PREFIX = "swb:endpoint-response:"


def key_for(endpoint: Endpoint, prepared: PreparedRequest) -> str | None:
    if not endpoint.cache_ttl or endpoint.method not in CACHEABLE_METHODS:
        return None
    digest = hashlib.sha256()
    for part in (
        str(endpoint.tenant_id),
        str(endpoint.pk),
        endpoint.updated_at.isoformat() if endpoint.updated_at else "",
        endpoint.method,
        prepared.url,
        *sorted(f"{k.lower()}:{v}" for k, v in prepared.headers.items()),
    ):
        digest.update(part.encode())
        digest.update(b"\0")
    return PREFIX + digest.hexdigest()


def get(key: str) -> tuple[int, dict, bytes] | None:
    hit = cache.get(key)
    return (hit["status_code"], hit["headers"], hit["content"]) if hit else None


def put(key: str, response: Any, ttl: int) -> None:
    value = {"status_code": response.status_code, "headers": dict(response.headers), "content": response.content}
    cache.set(key, value, timeout=ttl)
