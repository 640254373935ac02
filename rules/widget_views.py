"""The chat widget's public API under /widget/v1/ (no API key: a publishable key, then a session token).

HTTP adapters over `rules.widget` (session authentication, bodies, the checks): here are only the
statuses, the CORS headers and the response shapes.

CORS: a browser may call these only from an origin listed on the widget key. A refused origin gets
no CORS headers at all (so the browser blocks the response) and `POST /sessions` answers 403.
Requests without an Origin header (servers, curl) are not browsers and are not subject to CORS; the
publishable key and the session token still apply to them.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from rules import widget
from rules.models import Conversation, Message
from rules.serializers import (
    WidgetHistorySerializer,
    WidgetReplySerializer,
    WidgetSessionOpenSerializer,
    WidgetSessionSerializer,
    WidgetVisitorMessageSerializer,
)
from rules.widget import WidgetRefused
from tenants.api import UNAVAILABLE_ERRORS, ErrorSerializer, domain_error_response, error_body, unavailable
from tenants.auth import client_ip
from tenants.errors import ErrorCode, ServiceUnavailable

R = TypeVar("R", bound=HttpResponse)
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
# The security scheme of a session's endpoints (APPEND_COMPONENTS in SPECTACULAR_SETTINGS describes it).
WIDGET_SESSION_SCHEME = "widgetSession"
SESSION_ID = OpenApiParameter("session_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
ERROR_DESCRIPTIONS = {
    400: "Malformed body, unknown field or invalid value",
    401: "Invalid or inactive widget key, or invalid session or session token",
    403: "This origin is not allowed for this widget key",
    413: "Request body too large",
    415: "Content-Type must be application/json",
    429: "Too many requests (see Retry-After)",
    503: "Service temporarily unavailable (see Retry-After)",
}


def _documented_errors(*statuses: int) -> dict:
    return {status: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status]) for status in statuses}


def _cors(response: R, origin: str | None, *, preflight: bool = False) -> R:
    response["Vary"] = "Origin"
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        if preflight:
            response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            response["Access-Control-Max-Age"] = "600"
        else:
            response["Access-Control-Expose-Headers"] = "Retry-After"
    return response


def _error(exc: WidgetRefused | ServiceUnavailable, origin: str | None, *, cors: bool = True) -> JsonResponse:
    response = domain_error_response(exc)
    # A refused origin never gets CORS headers: the browser must not read the answer.
    return _cors(response, origin if cors and exc.code != ErrorCode.FORBIDDEN else None)


def _body(request, fields: frozenset[str]) -> dict:
    return widget.parse_body(request.content_type, lambda: request.body, fields=fields)


def _origin(request) -> str | None:
    return request.headers.get("Origin") or None


class WidgetView(APIView):
    """A widget endpoint. DRF routes it only so that the OpenAPI schema documents it: `dispatch` hands
    Django's request straight to `get`/`post`, without DRF's authentication, parsing or content
    negotiation — the publishable key, the session token, CORS and the errors are the widget's own."""

    authentication_classes = ()
    permission_classes = ()

    def dispatch(self, request, *args, **kwargs):
        origin = _origin(request)
        if request.method == "OPTIONS":
            return self.preflight(request, origin, **kwargs)
        handler = getattr(self, request.method.lower(), None) if request.method in ("GET", "POST") else None
        if handler is None:
            response = _cors(JsonResponse(error_body("Method not allowed"), status=405), None)
            response["Allow"] = ", ".join([m for m in ("GET", "POST") if hasattr(self, m.lower())] + ["OPTIONS"])
            return response
        try:
            return _cors(handler(request, origin, **kwargs), origin)
        except WidgetRefused as exc:
            return self.refused(exc, origin)
        except UNAVAILABLE_ERRORS as exc:
            # Readable (CORS) by a widget on a known site, so it can wait and send again.
            allowed = origin is not None and widget.origin_allowed_anywhere(origin)
            return _error(unavailable(exc), origin, cors=allowed)

    def preflight(self, request, origin: str | None, **kwargs: Any) -> HttpResponse:
        raise NotImplementedError

    def refused(self, exc: WidgetRefused, origin: str | None) -> JsonResponse:
        return _error(exc, origin)


class SessionsView(WidgetView):
    def preflight(self, request, origin: str | None, **kwargs: Any) -> HttpResponse:
        # A preflight carries no body, so no key: allow the origin if any active key lists it.
        if origin and widget.origin_allowed_anywhere(origin):
            return _cors(HttpResponse(status=204), origin, preflight=True)
        return HttpResponse(status=403)

    @extend_schema(
        request=WidgetSessionOpenSerializer,
        responses={201: WidgetSessionSerializer, **_documented_errors(400, 401, 403, 413, 415, 429, 503)},
        auth=[],
        summary="Open a widget session",
    )
    def post(self, request, origin: str | None) -> JsonResponse:
        """`{"widget_key", "variables", "visitor_id"}` → `{"session_id", "token"}` (the token only this once)."""
        widget.limit("widget-ip-sessions", client_ip(request) or "-", settings.WIDGET_RATE_IP_SESSIONS)
        conversation, token = widget.open_session(_body(request, widget.SESSION_FIELDS), origin)
        return JsonResponse({"session_id": str(conversation.id), "token": token}, status=201)


def _public_message(message: Message) -> dict:
    return {"id": str(message.id), "role": message.role, "text": message.text, "created_at": message.created_at}


class SessionMessagesView(WidgetView):
    def preflight(self, request, origin: str | None, session_id: str = "", **kwargs: Any) -> HttpResponse:
        if origin and widget.session_allows(session_id, origin):
            return _cors(HttpResponse(status=204), origin, preflight=True)
        return HttpResponse(status=403)

    def refused(self, exc: WidgetRefused, origin: str | None) -> JsonResponse:
        # A bad session's 401 is readable only by a widget on a known site (so it can open a new session).
        if exc.code == ErrorCode.UNAUTHENTICATED:
            return _error(exc, origin, cors=origin is not None and widget.origin_allowed_anywhere(origin))
        return _error(exc, origin)

    @extend_schema(
        parameters=[SESSION_ID],
        responses={200: WidgetHistorySerializer, **_documented_errors(401, 403)},
        auth=[{WIDGET_SESSION_SCHEME: []}],  # type: ignore[list-item]  # a security requirement object
        summary="A widget session's messages",
    )
    def get(self, request, origin: str | None, session_id: str) -> JsonResponse:
        """The visitor's and the assistant's messages, oldest first (at most the last 200)."""
        return _history(request, _conversation(request, origin, session_id))

    @extend_schema(
        parameters=[SESSION_ID],
        request=WidgetVisitorMessageSerializer,
        responses={200: WidgetReplySerializer, **_documented_errors(400, 401, 403, 413, 415, 429, 503)},
        auth=[{WIDGET_SESSION_SCHEME: []}],  # type: ignore[list-item]  # a security requirement object
        summary="Send a visitor message",
    )
    def post(self, request, origin: str | None, session_id: str) -> JsonResponse:
        """`{"text"}` → the reply and the new visitor and assistant messages."""
        return _post_message(request, _conversation(request, origin, session_id))


def _conversation(request, origin: str | None, session_id: str) -> Conversation:
    conversation = widget.authenticate_session(session_id, request.headers.get("Authorization", ""))
    widget.check_origin(conversation.widget_key, origin)
    return conversation


def _history(request, conversation: Conversation) -> JsonResponse:
    messages = widget.recent_messages(conversation)
    return JsonResponse({"session_id": str(conversation.id), "messages": [_public_message(m) for m in messages]})


def _post_message(request, conversation: Conversation) -> JsonResponse:
    widget.limit("widget-session", str(conversation.id), settings.WIDGET_RATE_SESSION_MESSAGES)
    widget.limit("widget-ip", client_ip(request) or "-", settings.WIDGET_RATE_IP_MESSAGES)
    reply, messages = widget.post_message(conversation, _body(request, widget.MESSAGE_FIELDS))
    return JsonResponse(
        {"session_id": str(conversation.id), "reply": reply, "messages": [_public_message(m) for m in messages]}
    )
