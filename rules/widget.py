"""The chat widget's sessions: the checks behind /widget/v1/, apart from HTTP and CORS.

As API keys are authenticated in `tenants.auth`, a widget session is authenticated here
(`authenticate_session`); bodies are parsed and checked (`parse_body`), sessions opened (`open_session`)
and visitor messages evaluated (`post_message`). Every refusal is a `WidgetRefused` carrying a code;
`rules.widget_views` turns it into a status and adds the CORS headers.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from rules import engine, services
from rules.models import Channel, Conversation, Message, MessageRole, WidgetKey
from tenants import ratelimit
from tenants.errors import DomainError, ErrorCode
from tenants.parsers import RequestJSONRefused, loads_request_json
from tenants.secrets import hash_token

HISTORY_LIMIT = 200
SESSION_FIELDS = frozenset({"widget_key", "variables", "visitor_id"})
MESSAGE_FIELDS = frozenset({"text"})
ORIGIN_REFUSED = "This origin is not allowed for this widget key"


class WidgetRefused(DomainError):
    """A widget request refused: the code, the public message, and for `rate_limited` the seconds to wait."""

    def __init__(self, message: str, *, code: ErrorCode = ErrorCode.INVALID, retry_after: int | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


def limit(scope: str, identity: str, spec: str) -> None:
    """Count one request of `identity` against `spec` (e.g. `10/m`); WidgetRefused when over it."""
    retry_after = ratelimit.hit(scope, identity, spec)
    if retry_after is not None:
        raise WidgetRefused("Too many requests, slow down", code=ErrorCode.RATE_LIMITED, retry_after=retry_after)


def parse_body(content_type: str, read: Callable[[], bytes], *, fields: frozenset[str]) -> dict[str, Any]:
    """The JSON object of a request with only `fields` in it. `read` returns the raw body (called once
    the content type is known to be JSON)."""
    if content_type != "application/json":
        raise WidgetRefused("Content-Type must be application/json", code=ErrorCode.UNSUPPORTED_FORMAT)
    try:
        body = loads_request_json(read() or b"null")
    except RequestDataTooBig:
        raise WidgetRefused("Request body too large", code=ErrorCode.TOO_LARGE) from None
    except RequestJSONRefused as exc:
        raise WidgetRefused(f"Malformed request body: {exc}") from None
    except ValueError:
        raise WidgetRefused("Malformed request body: not valid JSON") from None
    if not isinstance(body, dict):
        raise WidgetRefused("Malformed request body: expected a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise WidgetRefused(f"Unknown field(s): {', '.join(unknown)}")
    return body


def open_session(body: dict[str, Any], origin: str | None) -> tuple[Conversation, str]:
    """A new session for `{"widget_key", "variables", "visitor_id"}` from `origin` (None: not a
    browser); returns the conversation and its token (shown this once)."""
    raw_key = body.get("widget_key")
    key = None
    if isinstance(raw_key, str) and raw_key:
        key = WidgetKey.objects.filter(key=raw_key, is_active=True).first()
    if key is None:
        raise WidgetRefused("Invalid or inactive widget key", code=ErrorCode.UNAUTHENTICATED)
    check_origin(key, origin)
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        raise WidgetRefused("variables must be an object")
    if len(json.dumps(variables)) > settings.WIDGET_VARIABLES_MAX_BYTES:
        raise WidgetRefused(f"variables must be at most {settings.WIDGET_VARIABLES_MAX_BYTES} bytes")
    visitor_id = body.get("visitor_id") or ""
    if not isinstance(visitor_id, str) or len(visitor_id) > 200:
        raise WidgetRefused("visitor_id must be a string of at most 200 characters")
    return services.open_widget_session(key, variables=variables, visitor_id=visitor_id)


def authenticate_session(session_id: Any, authorization: str) -> Conversation:
    """The widget conversation `session_id` if `authorization` is `Bearer <its session token>`."""
    scheme, _, token = authorization.partition(" ")
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
        raise WidgetRefused("Invalid session or session token", code=ErrorCode.UNAUTHENTICATED)
    return conversation


def check_origin(key: WidgetKey | None, origin: str | None) -> None:
    """A browser's `origin` must be one the widget key lists (requests without one are not browsers)."""
    if origin and (key is None or not key.allows_origin(origin)):
        raise WidgetRefused(ORIGIN_REFUSED, code=ErrorCode.FORBIDDEN)


def origin_allowed_anywhere(origin: str) -> bool:
    """Whether any active widget key lists `origin` (a preflight carries no key to check against)."""
    return WidgetKey.objects.filter(is_active=True, origin_index__contains=f"\n{origin}\n").exists()


def session_allows(session_id: Any, origin: str) -> bool:
    """A preflight for a session: its key's origins; for an unknown session, any active key's (the
    request itself then answers 401, readable by the widget so it can start over)."""
    conversation = (
        Conversation.objects.filter(pk=session_id, channel=Channel.WIDGET).select_related("widget_key").first()
    )
    if conversation is None or conversation.widget_key is None:
        return conversation is None and origin_allowed_anywhere(origin)
    return conversation.widget_key.allows_origin(origin)


def recent_messages(conversation: Conversation) -> list[Message]:
    """The visitor's and the assistant's messages, oldest first (at most the last HISTORY_LIMIT)."""
    recent = conversation.messages.filter(role__in=[MessageRole.VISITOR, MessageRole.ASSISTANT]).order_by(
        "-created_at"
    )[:HISTORY_LIMIT]
    return list(reversed(recent))


def post_message(conversation: Conversation, body: dict[str, Any]) -> tuple[str | None, list[Message]]:
    """Evaluate the visitor's `{"text"}`: the reply and the new visitor and assistant messages."""
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise WidgetRefused("text is required")
    if len(text) > settings.MESSAGE_MAX_CHARS:
        raise WidgetRefused(f"text must be at most {settings.MESSAGE_MAX_CHARS} characters")
    try:
        result = engine.evaluate_message(conversation, text.strip())
    except WidgetRefused:
        raise
    except DomainError as exc:  # e.g. a rule's template over its limits: refused, nothing saved
        raise WidgetRefused(exc.message, code=exc.code) from None
    visible = [m for m in result.messages if m.role in (MessageRole.VISITOR, MessageRole.ASSISTANT)]
    return result.reply, visible
