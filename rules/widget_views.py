"""The chat widget's public API under /widget/v1/ (no API key: a publishable key, then a session token).

CORS: a browser may call these only from an origin listed on the widget key. A refused origin gets
no CORS headers at all (so the browser blocks the response) and `POST /sessions` answers 403.
Requests without an Origin header (servers, curl) are not browsers and are not subject to CORS; the
publishable key and the session token still apply to them.
"""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from rules import engine, services
from rules.models import Channel, Conversation, MessageRole, WidgetKey
from rules.serializers import (
    WidgetHistorySerializer,
    WidgetReplySerializer,
    WidgetSessionOpenSerializer,
    WidgetSessionSerializer,
    WidgetVisitorMessageSerializer,
)
from tenants import ratelimit
from tenants.api import ErrorSerializer, error_body, status_for
from tenants.auth import client_ip
from tenants.errors import DomainError
from tenants.parsers import RequestJSONRefused, loads_request_json
from tenants.secrets import hash_token

HISTORY_LIMIT = 200
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
SESSION_FIELDS = {"widget_key", "variables", "visitor_id"}
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
}


def _documented_errors(*statuses: int) -> dict:
    return {status: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[status]) for status in statuses}


class WidgetError(Exception):
    def __init__(self, message: str, status: int, *, retry_after: int | None = None, cors: bool = True) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.cors = cors


def _cors(response: HttpResponse, origin: str | None, *, preflight: bool = False) -> HttpResponse:
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


def _error(exc: WidgetError, origin: str | None) -> JsonResponse:
    response = JsonResponse(error_body(str(exc)), status=exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return _cors(response, origin if exc.cors else None)


def _json_body(request) -> dict:
    if request.content_type != "application/json":
        raise WidgetError("Content-Type must be application/json", 415)
    try:
        body = loads_request_json(request.body or b"null")
    except RequestDataTooBig:
        raise WidgetError("Request body too large", 413) from None
    except RequestJSONRefused as exc:
        raise WidgetError(f"Malformed request body: {exc}", 400) from None
    except ValueError:
        raise WidgetError("Malformed request body: not valid JSON", 400) from None
    if not isinstance(body, dict):
        raise WidgetError("Malformed request body: expected a JSON object", 400)
    return body


def _limit(scope: str, identity: str, spec: str) -> None:
    retry_after = ratelimit.hit(scope, identity, spec)
    if retry_after is not None:
        raise WidgetError("Too many requests, slow down", 429, retry_after=retry_after)


def _origin(request) -> str | None:
    return request.headers.get("Origin") or None


def _origin_allowed_anywhere(origin: str) -> bool:
    return WidgetKey.objects.filter(is_active=True, origin_index__contains=f"\n{origin}\n").exists()


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
            response = _error(WidgetError("Method not allowed", 405, cors=False), origin)
            response["Allow"] = ", ".join([m for m in ("GET", "POST") if hasattr(self, m.lower())] + ["OPTIONS"])
            return response
        try:
            return _cors(handler(request, origin, **kwargs), origin)
        except WidgetError as exc:
            return self.refused(exc, origin)

    def preflight(self, request, origin: str | None, **kwargs) -> HttpResponse:
        raise NotImplementedError

    def refused(self, exc: WidgetError, origin: str | None) -> JsonResponse:
        return _error(exc, origin)


class SessionsView(WidgetView):
    def preflight(self, request, origin: str | None) -> HttpResponse:
        # A preflight carries no body, so no key: allow the origin if any active key lists it.
        if origin and _origin_allowed_anywhere(origin):
            return _cors(HttpResponse(status=204), origin, preflight=True)
        return HttpResponse(status=403)

    @extend_schema(
        request=WidgetSessionOpenSerializer,
        responses={201: WidgetSessionSerializer, **_documented_errors(400, 401, 403, 413, 415, 429)},
        auth=[],
        summary="Open a widget session",
    )
    def post(self, request, origin: str | None) -> JsonResponse:
        """`{"widget_key", "variables", "visitor_id"}` → `{"session_id", "token"}` (the token only this once)."""
        return _open_session(request, origin)


def _open_session(request, origin: str | None) -> JsonResponse:
    _limit("widget-ip-sessions", client_ip(request) or "-", settings.WIDGET_RATE_IP_SESSIONS)
    body = _json_body(request)
    unknown = sorted(set(body) - SESSION_FIELDS)
    if unknown:
        raise WidgetError(f"Unknown field(s): {', '.join(unknown)}", 400)
    raw_key = body.get("widget_key")
    key = None
    if isinstance(raw_key, str) and raw_key:
        key = WidgetKey.objects.filter(key=raw_key, is_active=True).first()
    if key is None:
        raise WidgetError("Invalid or inactive widget key", 401)
    if origin and not key.allows_origin(origin):
        raise WidgetError("This origin is not allowed for this widget key", 403, cors=False)
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise WidgetError("variables must be an object", 400)
    if len(json.dumps(variables)) > settings.WIDGET_VARIABLES_MAX_BYTES:
        raise WidgetError(f"variables must be at most {settings.WIDGET_VARIABLES_MAX_BYTES} bytes", 400)
    visitor_id = body.get("visitor_id") or ""
    if not isinstance(visitor_id, str) or len(visitor_id) > 200:
        raise WidgetError("visitor_id must be a string of at most 200 characters", 400)
    conversation, token = services.open_widget_session(key, variables=variables, visitor_id=visitor_id)
    return JsonResponse({"session_id": str(conversation.id), "token": token}, status=201)


def _session(request, session_id) -> Conversation:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    conversation = (
        Conversation.objects.select_related("widget_key", "tenant")
        .filter(pk=session_id, channel=Channel.WIDGET, widget_key__is_active=True)
        .first()
    )
    if (
        conversation is None
        or scheme.lower() != "bearer"
        or not token
        or not hmac.compare_digest(conversation.token_hash, hash_token(token.strip()))
    ):
        raise WidgetError("Invalid session or session token", 401, cors=False)
    return conversation


def _public_message(message) -> dict:
    return {"id": str(message.id), "role": message.role, "text": message.text, "created_at": message.created_at}


class SessionMessagesView(WidgetView):
    def preflight(self, request, origin: str | None, session_id: str) -> HttpResponse:
        conversation = (
            Conversation.objects.filter(pk=session_id, channel=Channel.WIDGET).select_related("widget_key").first()
        )
        if origin and _session_allows(conversation, origin):
            return _cors(HttpResponse(status=204), origin, preflight=True)
        return HttpResponse(status=403)

    def refused(self, exc: WidgetError, origin: str | None) -> JsonResponse:
        if exc.status == 401 and origin and _origin_allowed_anywhere(origin):
            # Let a widget on a known site read the 401, so it can open a new session.
            exc.cors = True
        return _error(exc, origin)

    @extend_schema(
        parameters=[SESSION_ID],
        responses={200: WidgetHistorySerializer, **_documented_errors(401, 403)},
        auth=[{WIDGET_SESSION_SCHEME: []}],
        summary="A widget session's messages",
    )
    def get(self, request, origin: str | None, session_id: str) -> JsonResponse:
        """The visitor's and the assistant's messages, oldest first (at most the last 200)."""
        return _history(request, _conversation(request, origin, session_id))

    @extend_schema(
        parameters=[SESSION_ID],
        request=WidgetVisitorMessageSerializer,
        responses={200: WidgetReplySerializer, **_documented_errors(400, 401, 403, 413, 415, 429)},
        auth=[{WIDGET_SESSION_SCHEME: []}],
        summary="Send a visitor message",
    )
    def post(self, request, origin: str | None, session_id: str) -> JsonResponse:
        """`{"text"}` → the reply and the new visitor and assistant messages."""
        return _post_message(request, _conversation(request, origin, session_id))


def _conversation(request, origin: str | None, session_id: str) -> Conversation:
    conversation = _session(request, session_id)
    if origin and not conversation.widget_key.allows_origin(origin):
        raise WidgetError("This origin is not allowed for this widget key", 403, cors=False)
    return conversation


def _session_allows(conversation: Conversation | None, origin: str) -> bool:
    """A preflight for a session: its key's origins; for an unknown session, any active key's (the
    request itself then answers 401, readable by the widget so it can start over)."""
    if conversation is None or conversation.widget_key is None:
        return conversation is None and _origin_allowed_anywhere(origin)
    return conversation.widget_key.allows_origin(origin)


def _history(request, conversation: Conversation) -> JsonResponse:
    recent = conversation.messages.filter(role__in=[MessageRole.VISITOR, MessageRole.ASSISTANT]).order_by(
        "-created_at"
    )[:HISTORY_LIMIT]
    return JsonResponse(
        {"session_id": str(conversation.id), "messages": [_public_message(m) for m in reversed(recent)]}
    )


def _post_message(request, conversation: Conversation) -> JsonResponse:
    _limit("widget-session", str(conversation.id), settings.WIDGET_RATE_SESSION_MESSAGES)
    _limit("widget-ip", client_ip(request) or "-", settings.WIDGET_RATE_IP_MESSAGES)
    body = _json_body(request)
    unknown = sorted(set(body) - {"text"})
    if unknown:
        raise WidgetError(f"Unknown field(s): {', '.join(unknown)}", 400)
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise WidgetError("text is required", 400)
    if len(text) > settings.MESSAGE_MAX_CHARS:
        raise WidgetError(f"text must be at most {settings.MESSAGE_MAX_CHARS} characters", 400)
    try:
        result = engine.evaluate_message(conversation, text.strip())
    except DomainError as exc:
        raise WidgetError(exc.message, status_for(exc)) from None
    visible = [m for m in result.messages if m.role in (MessageRole.VISITOR, MessageRole.ASSISTANT)]
    return JsonResponse(
        {"session_id": str(conversation.id), "reply": result.reply, "messages": [_public_message(m) for m in visible]}
    )
