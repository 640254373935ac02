"""The error shape on every API path, whoever produced the error (DRF, Django, the WSGI layer)."""

from __future__ import annotations

import re
from http import HTTPStatus

from django.conf import settings

from tenants.api import is_api_path, json_error

# Django's own words where DRF has a matching message, so a 404 reads the same wherever it came from.
MESSAGES = {404: "Not found.", 500: "Internal server error"}


def _declared_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _has_nul(request) -> bool:
    """PostgreSQL can neither compare nor store U+0000: a NUL in the path, a query value or a header
    value (an Idempotency-Key, an Origin) would fail in the database, a 500."""
    query = request.META.get("QUERY_STRING", "")
    return (
        "\x00" in request.path_info
        or "%00" in query
        or "\x00" in query
        or any("\x00" in value for value in request.headers.values())
    )


def _body_limit(path: str) -> int | None:
    """DATA_UPLOAD_MAX_MEMORY_SIZE, or the larger limit of an upload route (API_LARGE_BODY_PATHS)."""
    for pattern, limit in getattr(settings, "API_LARGE_BODY_PATHS", ()):
        if re.match(pattern, path):
            return limit
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _message(status: int) -> str:
    if status in MESSAGES:
        return MESSAGES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Request failed"


class ApiErrorMiddleware:
    """On /api/, /integration/ and /widget/: refuse a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE with
    413 from its declared Content-Length, before routing, authentication or parsing (so also on views
    that are not DRF's), refuse a NUL character in the URL or a header with 400, and turn Django's
    HTML error pages (unknown route, CSRF failure, an unhandled exception — DEBUG on or off) into
    `{"error": "..."}`. A body without Content-Length reads as empty.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        if not is_api_path(request.path_info):
            return self.get_response(request)
        limit = _body_limit(request.path_info)
        if limit is not None and _declared_length(request) > limit:
            return json_error(f"Request body too large (at most {limit} bytes)", 413)
        if _has_nul(request):
            return json_error("The URL and headers may not contain NUL (%00) characters", 400)
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            return json_error(_message(response.status_code), response.status_code)
        return response
