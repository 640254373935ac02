"""rules.widget: session authentication and body checks as a service, without HTTP."""

from __future__ import annotations

import pytest

from rules import widget
from rules.models import WidgetKey
from tenants.errors import ErrorCode

ORIGIN = "https://shop.example"


@pytest.fixture
def key(tenant, db):
    return WidgetKey.objects.create(tenant=tenant, name="Shop", allowed_origins=[ORIGIN])


def test_a_session_authenticates_with_its_own_token_only(key):
    conversation, token = widget.open_session({"widget_key": key.key, "visitor_id": "v1"}, ORIGIN)

    assert widget.authenticate_session(conversation.id, f"Bearer {token}") == conversation
    for header in ("", token, f"Bearer {token}x", f"Basic {token}"):
        with pytest.raises(widget.WidgetRefused) as refused:
            widget.authenticate_session(conversation.id, header)
        assert refused.value.code == ErrorCode.UNAUTHENTICATED


def test_a_session_of_a_deactivated_key_no_longer_authenticates(key):
    conversation, token = widget.open_session({"widget_key": key.key}, None)
    WidgetKey.objects.filter(pk=key.pk).update(is_active=False)

    with pytest.raises(widget.WidgetRefused):
        widget.authenticate_session(conversation.id, f"Bearer {token}")


def test_an_unlisted_origin_is_forbidden(key):
    with pytest.raises(widget.WidgetRefused) as refused:
        widget.open_session({"widget_key": key.key}, "https://evil.example")
    assert refused.value.code == ErrorCode.FORBIDDEN


@pytest.mark.parametrize(
    ("content_type", "raw", "code", "message"),
    [
        ("text/plain", b"{}", ErrorCode.UNSUPPORTED_FORMAT, "Content-Type must be application/json"),
        ("application/json", b"{", ErrorCode.INVALID, "Malformed request body: not valid JSON"),
        ("application/json", b"[1]", ErrorCode.INVALID, "Malformed request body: expected a JSON object"),
        ("application/json", b'{"text": "hi", "x": 1}', ErrorCode.INVALID, "Unknown field(s): x"),
    ],
)
def test_bodies_are_refused_with_a_code(content_type, raw, code, message):
    with pytest.raises(widget.WidgetRefused) as refused:
        widget.parse_body(content_type, lambda: raw, fields=widget.MESSAGE_FIELDS)
    assert (refused.value.code, refused.value.message) == (code, message)


def test_the_body_is_not_read_when_the_content_type_is_wrong():
    def read() -> bytes:
        raise AssertionError("read the body of a request it refuses anyway")

    with pytest.raises(widget.WidgetRefused):
        widget.parse_body("text/plain", read, fields=widget.MESSAGE_FIELDS)
