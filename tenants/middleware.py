"""The error shape on every API path, whoever produced the error (DRF, Django, the WSGI layer)."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.contrib.auth import middleware as auth_middleware
from django.contrib.messages import middleware as messages_middleware
from django.contrib.sessions import middleware as sessions_middleware
from django.http.request import HttpHeaders
from django.middleware import csrf
from django_otp import middleware as otp_middleware

from tenants import metrics
from tenants.api import UNAVAILABLE_ERRORS, domain_error_response, is_api_path, json_error, unavailable

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
        or any("\x00" in value for name, value in request.META.items() if _is_header(name))
    )


def _is_header(meta_name: str) -> bool:
    """The META names `request.headers` is made of (read here without building it)."""
    return meta_name.startswith("HTTP_") or meta_name in HttpHeaders.UNPREFIXED_HEADERS


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
    """On /api/, /integration/, /widget/ and /hooks/: refuse a body larger than DATA_UPLOAD_MAX_MEMORY_SIZE with
    413 from its declared Content-Length, before routing, authentication or parsing (so also on views
    that are not DRF's), refuse a NUL character in the URL or a header with 400, and turn Django's
    HTML error pages (unknown route, CSRF failure, an unhandled exception — DEBUG on or off) into
    `{"error": "..."}`. A body without Content-Length reads as empty. Responses to API-key requests carry
    the key's `RateLimit-*` headers. A view that met the shared cache down answers 503 with Retry-After.
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
            response = json_error(_message(response.status_code), response.status_code)
        # Set by tenants.throttling on every request an API key made, allowed or not.
        decision = getattr(request, "rate_limit_decision", None)
        if decision is not None:
            for name, value in decision.headers().items():
                response[name] = value
        return response

    def process_exception(self, request, exception):
        """A view on an API path that met the shared cache down (DRF's views answer it themselves):
        503 with Retry-After, as tenants.api.exception_handler does."""
        if not (is_api_path(request.path_info) and isinstance(exception, UNAVAILABLE_ERRORS)):
            return None
        return domain_error_response(unavailable(exception))


class MetricsMiddleware:
    """Counts and times every response by its route pattern (`api/v1/calls/<uuid:pk>`, never the raw
    path: ids would make a series per object); static files count as `static`, a request no route
    matched as `unmatched`."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.static_prefix = "/" + settings.STATIC_URL.lstrip("/")

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is not None and match.route:
            route = route_label(match.route)
        elif request.path_info.startswith(self.static_prefix):  # answered by WhiteNoise before routing
            route = "static"
        else:
            route = "unmatched"
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.observe_http(route, method, response.status_code, time.perf_counter() - started)
        return response


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


@functools.lru_cache(maxsize=1024)
def route_label(route: str) -> str:
    """`api/v1/agents/(?P<pk>[^/]+)/?$` (DRF's regex routes) reads as `api/v1/agents/<pk>`."""
    label = _NAMED_GROUP.sub(r"<\1>", route).replace("^", "").removesuffix("$").removesuffix("/?")
    return label or "/"


# --- the browser session's middlewares, idle on requests that carry their own credentials -----------


def authenticates_by_header(request) -> bool:
    """An API request with an `Authorization` header. DRF's first authenticator
    (`tenants.auth.ApiKeyAuthentication`) answers such a request from the header alone — its key, or 401
    — and never falls back to the session; the widget's and LiveKit's views read their own tokens from
    it. So neither the admin's session nor its CSRF cookie, user, second factor or messages can take
    part in the answer. A blank header is no header (DRF ignores it; the session is then read).
    """
    return is_api_path(request.path_info) and bool(request.META.get("HTTP_AUTHORIZATION", "").strip())


class _BrowserOnly:
    """A browser-session middleware that passes requests authenticated by header straight through.

    Subclasses keep Django's class as a base, so the admin's and Django's checks still find it, and
    every hook besides `__call__` (CSRF's `process_view`, which DRF's views are exempt from anyway)
    is Django's own, unchanged.
    """

    get_response: Callable

    def __call__(self, request):
        if authenticates_by_header(request):
            return self.get_response(request)
        return super().__call__(request)


class SessionMiddleware(_BrowserOnly, sessions_middleware.SessionMiddleware):
    pass


class CsrfViewMiddleware(_BrowserOnly, csrf.CsrfViewMiddleware):
    pass


class AuthenticationMiddleware(_BrowserOnly, auth_middleware.AuthenticationMiddleware):
    pass


class OTPMiddleware(_BrowserOnly, otp_middleware.OTPMiddleware):
    pass


class MessageMiddleware(_BrowserOnly, messages_middleware.MessageMiddleware):
    pass
