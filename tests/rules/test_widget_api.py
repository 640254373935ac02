from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from rules.models import Conversation, WidgetKey
from tenants import ratelimit
from tenants.models import Role
from tests.rules.conftest import reply

ORIGIN = "https://shop.example"


@pytest.fixture
def widget_key(tenant, make_rule, clean_cache):
    make_rule(
        tenant,
        "Echo",
        trigger={"type": "regex", "pattern": r"^say (?P<what>.+)$"},
        actions=[reply("You said {what} on {page}.")],
    )
    return WidgetKey.objects.create(tenant=tenant, name="Shop", allowed_origins=[ORIGIN])


@pytest.fixture(autouse=True)
def _one_window(monkeypatch):
    """Keep every request of a test in one rate-limit window (no flaky resets at a minute boundary)."""
    now = (time.time() // 3600) * 3600 + 1
    monkeypatch.setattr(ratelimit, "_now", lambda: now)


@pytest.fixture
def browser_client():
    return Client(HTTP_ORIGIN=ORIGIN)


def post(client, path, body, **headers):
    return client.post(path, json.dumps(body), content_type="application/json", **headers)


def open_session(client, widget_key, variables=None):
    response = post(
        client, "/widget/v1/sessions", {"widget_key": widget_key.key, "variables": variables or {"page": "home"}}
    )
    assert response.status_code == 201, response.content
    return response.json()


def test_a_session_converses_with_its_token(browser_client, widget_key):
    session = open_session(browser_client, widget_key)
    assert session["token"].startswith("swb_ws_")
    conversation = Conversation.objects.get(pk=session["session_id"])
    assert (conversation.channel, conversation.variables, conversation.widget_key) == (
        "widget",
        {"page": "home"},
        widget_key,
    )
    assert session["token"] not in conversation.token_hash

    auth = {"HTTP_AUTHORIZATION": f"Bearer {session['token']}"}
    response = post(
        browser_client, f"/widget/v1/sessions/{session['session_id']}/messages", {"text": "say hello"}, **auth
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    body = response.json()
    assert body["reply"] == "You said hello on home."
    assert [(m["role"], m["text"]) for m in body["messages"]] == [
        ("visitor", "say hello"),
        ("assistant", "You said hello on home."),
    ]

    history = browser_client.get(f"/widget/v1/sessions/{session['session_id']}/messages", **auth).json()
    assert [m["text"] for m in history["messages"]] == ["say hello", "You said hello on home."]
    assert set(history["messages"][0]) == {"id", "role", "text", "created_at"}


def test_a_token_only_works_for_its_own_session(browser_client, widget_key):
    first = open_session(browser_client, widget_key)
    second = open_session(browser_client, widget_key)
    path = f"/widget/v1/sessions/{second['session_id']}/messages"
    for token in (first["token"], "swb_ws_guess", ""):
        response = post(browser_client, path, {"text": "say hi"}, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 401
        assert response.json() == {"error": "Invalid session or session token"}
        assert browser_client.get(path, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401
    assert Conversation.objects.get(pk=second["session_id"]).messages.count() == 0


def test_a_widget_session_is_not_an_api_conversation_and_api_keys_do_not_work(client, tenant, clients, widget_key):
    api_conversation = Conversation.objects.create(tenant=tenant, channel="api")
    response = post(
        client,
        f"/widget/v1/sessions/{api_conversation.id}/messages",
        {"text": "x"},
        HTTP_AUTHORIZATION=f"Bearer {clients[Role.OWNER].raw_key}",
    )
    assert response.status_code == 401


def test_cors_allows_only_the_keys_origins(widget_key):
    preflight = Client().options("/widget/v1/sessions", HTTP_ORIGIN=ORIGIN, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]

    evil = Client(HTTP_ORIGIN="https://evil.example")
    refused_preflight = evil.options("/widget/v1/sessions", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert refused_preflight.status_code == 403
    assert "Access-Control-Allow-Origin" not in refused_preflight

    refused = post(evil, "/widget/v1/sessions", {"widget_key": widget_key.key})
    assert refused.status_code == 403
    assert refused.json() == {"error": "This origin is not allowed for this widget key"}
    assert "Access-Control-Allow-Origin" not in refused
    assert not Conversation.objects.exists()

    session = open_session(Client(HTTP_ORIGIN=ORIGIN), widget_key)
    path = f"/widget/v1/sessions/{session['session_id']}/messages"
    assert Client(HTTP_ORIGIN=ORIGIN).options(path)["Access-Control-Allow-Origin"] == ORIGIN
    assert "Access-Control-Allow-Origin" not in evil.options(path)
    stolen = post(evil, path, {"text": "say x"}, HTTP_AUTHORIZATION=f"Bearer {session['token']}")
    assert stolen.status_code == 403
    assert "Access-Control-Allow-Origin" not in stolen


def test_invalid_or_inactive_keys_and_bad_bodies(browser_client, widget_key):
    assert post(browser_client, "/widget/v1/sessions", {"widget_key": "swb_pk_nope"}).status_code == 401
    assert post(browser_client, "/widget/v1/sessions", {"widget_key": widget_key.key, "extra": 1}).status_code == 400
    assert (
        post(browser_client, "/widget/v1/sessions", {"widget_key": widget_key.key, "variables": [1]}).status_code == 400
    )
    huge = {"widget_key": widget_key.key, "variables": {"x": "y" * 10_000}}
    assert post(browser_client, "/widget/v1/sessions", huge).status_code == 400
    bad = browser_client.post("/widget/v1/sessions", "{", content_type="application/json")
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("Malformed request body")
    assert browser_client.post("/widget/v1/sessions", "x=1", content_type="text/plain").status_code == 415
    deep = browser_client.post("/widget/v1/sessions", "[" * 5000 + "]" * 5000, content_type="application/json")
    assert deep.json() == {"error": "Malformed request body: JSON nested deeper than 64 levels"}  # was a 500
    nul = post(browser_client, "/widget/v1/sessions", {"widget_key": widget_key.key, "visitor_id": "a\x00"})
    assert nul.json() == {"error": "Malformed request body: strings may not contain NUL (\\u0000) characters"}
    session = open_session(browser_client, widget_key)
    widget_key.is_active = False
    widget_key.save()
    assert post(browser_client, "/widget/v1/sessions", {"widget_key": widget_key.key}).status_code == 401
    path = f"/widget/v1/sessions/{session['session_id']}/messages"
    assert (
        post(browser_client, path, {"text": "hi"}, HTTP_AUTHORIZATION=f"Bearer {session['token']}").status_code == 401
    )


def test_text_length_is_limited(browser_client, widget_key, settings):
    session = open_session(browser_client, widget_key)
    path = f"/widget/v1/sessions/{session['session_id']}/messages"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {session['token']}"}
    response = post(browser_client, path, {"text": "x" * (settings.MESSAGE_MAX_CHARS + 1)}, **auth)
    assert response.status_code == 400
    assert response.json() == {"error": f"text must be at most {settings.MESSAGE_MAX_CHARS} characters"}
    assert post(browser_client, path, {"text": "   "}, **auth).status_code == 400


def test_rate_limit_per_session_answers_429_with_retry_after(browser_client, widget_key, settings):
    settings.WIDGET_RATE_SESSION_MESSAGES = "3/60"
    session = open_session(browser_client, widget_key)
    path = f"/widget/v1/sessions/{session['session_id']}/messages"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {session['token']}"}
    statuses = [post(browser_client, path, {"text": "say hi"}, **auth).status_code for _ in range(3)]
    limited = post(browser_client, path, {"text": "say hi"}, **auth)

    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert limited["Access-Control-Allow-Origin"] == ORIGIN
    assert limited.json() == {"error": "Too many requests, slow down"}
    # Another session is not limited by this one.
    other = open_session(browser_client, widget_key)
    other_path = f"/widget/v1/sessions/{other['session_id']}/messages"
    assert (
        post(browser_client, other_path, {"text": "say hi"}, HTTP_AUTHORIZATION=f"Bearer {other['token']}").status_code
        == 200
    )


def test_rate_limit_per_ip_on_sessions_and_messages(browser_client, widget_key, settings):
    settings.WIDGET_RATE_IP_SESSIONS = "2/60"
    open_session(browser_client, widget_key)
    session = open_session(browser_client, widget_key)
    third = post(browser_client, "/widget/v1/sessions", {"widget_key": widget_key.key})
    assert third.status_code == 429
    assert int(third["Retry-After"]) >= 1
    # Another address is counted separately.
    assert (
        post(
            Client(HTTP_ORIGIN=ORIGIN, REMOTE_ADDR="10.1.2.3"), "/widget/v1/sessions", {"widget_key": widget_key.key}
        ).status_code
        == 201
    )

    settings.WIDGET_RATE_IP_MESSAGES = "1/60"
    path = f"/widget/v1/sessions/{session['session_id']}/messages"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {session['token']}"}
    assert post(browser_client, path, {"text": "say a"}, **auth).status_code == 200
    assert post(browser_client, path, {"text": "say b"}, **auth).status_code == 429


def test_widget_keys_api(clients, other_client, tenant):
    admin = clients[Role.ADMIN]
    created = admin.post(
        "/api/v1/widget-keys", {"name": "Shop", "allowed_origins": ["https://Shop.example/"]}, format="json"
    )
    assert created.status_code == 201
    data = created.json()
    assert data["key"].startswith("swb_pk_")
    assert data["allowed_origins"] == ["https://shop.example"]
    assert clients[Role.VIEWER].get(f"/api/v1/widget-keys/{data['id']}").json()["key"] == data["key"]
    assert clients[Role.MEMBER].post("/api/v1/widget-keys", {"name": "x"}, format="json").status_code == 403
    bad = admin.post("/api/v1/widget-keys", {"name": "x", "allowed_origins": ["javascript:alert(1)"]}, format="json")
    assert bad.status_code == 400
    assert other_client.get(f"/api/v1/widget-keys/{data['id']}").status_code == 404
    assert other_client.delete(f"/api/v1/widget-keys/{data['id']}").status_code == 404
    assert admin.patch(f"/api/v1/widget-keys/{data['id']}", {"key": "swb_pk_mine"}, format="json").status_code == 400
    changed = admin.patch(
        f"/api/v1/widget-keys/{data['id']}", {"allowed_origins": ["http://localhost:3000"]}, format="json"
    )
    assert changed.json()["allowed_origins"] == ["http://localhost:3000"]
    assert WidgetKey.objects.get(pk=data["id"]).origin_index == "\nhttp://localhost:3000\n"
    assert WidgetKey.objects.get(pk=data["id"]).tenant == tenant


def test_a_lost_session_answers_a_readable_401_to_a_known_site(browser_client, widget_key):
    path = "/widget/v1/sessions/00000000-0000-0000-0000-000000000001/messages"
    preflight = browser_client.options(path, HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert preflight.status_code == 204
    lost = post(browser_client, path, {"text": "hi"}, HTTP_AUTHORIZATION="Bearer swb_ws_old")
    assert lost.status_code == 401
    assert lost["Access-Control-Allow-Origin"] == ORIGIN
    evil = post(Client(HTTP_ORIGIN="https://evil.example"), path, {"text": "hi"}, HTTP_AUTHORIZATION="Bearer x")
    assert evil.status_code == 401
    assert "Access-Control-Allow-Origin" not in evil


def test_another_method_is_405_with_allow(browser_client, widget_key):
    session = open_session(browser_client, widget_key)
    for path, allowed in (
        ("/widget/v1/sessions", "POST, OPTIONS"),
        (f"/widget/v1/sessions/{session['session_id']}/messages", "GET, POST, OPTIONS"),
    ):
        response = browser_client.generic("TRACE", path)
        assert response.status_code == 405
        assert response.json() == {"error": "Method not allowed"}
        assert response["Allow"] == allowed  # RFC 9110: a 405 lists what is allowed (it was missing)


def test_the_widget_api_is_in_the_openapi_schema(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    sessions = schema["paths"]["/widget/v1/sessions"]
    messages = schema["paths"]["/widget/v1/sessions/{session_id}/messages"]
    assert sorted(sessions) == ["post"] and sorted(messages) == ["get", "post"]
    # no API key: opening a session needs none, a session's messages take its token
    assert "security" not in sessions["post"]
    assert messages["post"]["security"] == [{"widgetSession": []}]
    assert schema["components"]["securitySchemes"]["widgetSession"]["scheme"] == "bearer"
    assert sessions["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WidgetSessionOpenRequest"
    }
    assert sorted(messages["post"]["responses"]) == ["200", "400", "401", "403", "413", "415", "429", "503"]
