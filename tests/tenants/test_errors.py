"""The error shape `{"error": ..., "details": {...}}` for every failure on API paths (SPEC §13)."""

from __future__ import annotations

import json

import pytest
from django.test import Client


def test_malformed_json_is_400(owner_client):
    response = owner_client.post("/api/v1/api-keys", data='{"name": ', content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "error": "Malformed request body: JSON parse error - Expecting value: line 1 column 10 (char 9)"
    }


def test_json_that_is_not_an_object_is_400(owner_client):
    response = owner_client.post("/api/v1/api-keys", data="[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "error": "Expected a JSON object.",
        "details": {"non_field_errors": ["Expected a JSON object."]},
    }


def test_json_nested_too_deeply_is_400_not_a_recursion_error(owner_client):
    # 5,000 levels made json.loads raise RecursionError (a 500); 65 levels parse but are refused too
    for depth in (65, 5000):
        body = '{"name": "k", "role": ' + "[" * depth + "]" * depth + "}"
        response = owner_client.post("/api/v1/api-keys", data=body, content_type="application/json")
        assert response.status_code == 400
        assert response.json() == {"error": "Malformed request body: JSON nested deeper than 64 levels"}


@pytest.mark.parametrize("body", [{"name": "a\x00b"}, {"name": "k", "variables": {"a\x00": 1}}])
def test_a_nul_character_in_a_json_body_is_400(owner_client, body):
    # PostgreSQL stores U+0000 neither in text nor in jsonb: it was a 500 there (and saved on SQLite)
    response = owner_client.post("/api/v1/conversations", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"error": "Malformed request body: strings may not contain NUL (\\u0000) characters"}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api/v1/tools/a%00b/invoke", {}),
        ("/api/v1/conversations?search=a%00b", {}),
        ("/integration/v1/calls", {"HTTP_IDEMPOTENCY_KEY": "a\x00b"}),
    ],
)
def test_a_nul_character_in_the_url_or_a_header_is_400(owner_client, path, headers):
    response = owner_client.post(path, data="{}", content_type="application/json", **headers)
    assert response.status_code == 400
    assert response.json() == {"error": "The URL and headers may not contain NUL (%00) characters"}


def test_wrong_content_type_is_415(owner_client):
    response = owner_client.post("/api/v1/api-keys", data="name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json() == {"error": 'Unsupported media type "application/x-www-form-urlencoded" in request.'}


def test_unknown_route_is_404(owner_client, client):
    assert owner_client.get("/api/v1/nope").json() == {"error": "Not found."}
    for path in ("/api/v1/nope", "/api/nope", "/integration/v1/nope", "/widget/v1/nope"):
        response = client.get(path)
        assert (response.status_code, response.json()) == (404, {"error": "Not found."}), path


def test_unknown_route_is_json_even_with_debug_on(client, settings):
    settings.DEBUG = True
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "Not found."}


def test_non_api_404_stays_html(client, db):
    response = client.get("/nope")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_wrong_method_is_405(owner_client):
    response = owner_client.put("/api/v1/api-keys", {"name": "x"}, format="json")
    assert response.status_code == 405
    assert response.json() == {"error": 'Method "PUT" not allowed.'}


def test_unknown_field_is_400_with_details(owner_client):
    response = owner_client.post("/api/v1/api-keys", {"name": "x", "colour": "red", "key": "swb_mine"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "error": "colour: Unknown field.",
        "details": {"colour": ["Unknown field."], "key": ["Unknown field."]},
    }


def test_missing_and_wrongly_typed_fields_are_400_with_details(owner_client):
    response = owner_client.post("/api/v1/api-keys", {"role": ["owner"]}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "error": "name: This field is required.",
        "details": {"name": ["This field is required."], "role": ["\"['owner']\" is not a valid choice."]},
    }


def test_oversized_body_is_413_before_parsing(owner_client, settings):
    # given a limit of 1 KiB
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"name": "x" * 2000})
    # when a larger body arrives
    response = owner_client.post("/api/v1/api-keys", data=body, content_type="application/json")
    # then 413 in the error shape, and nothing was created
    assert response.status_code == 413
    assert response.json() == {"error": "Request body too large (at most 1024 bytes)"}
    assert owner_client.get("/api/v1/api-keys").json()["count"] == 4


def test_oversized_body_is_refused_without_credentials_too(client, settings, db):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    response = client.post("/integration/v1/calls", data="x" * 11, content_type="application/json")
    assert response.status_code == 413


@pytest.mark.urls("tests.tenants.urls")
@pytest.mark.parametrize("debug", [False, True])
def test_unhandled_exception_on_an_api_path_is_a_json_500(db, settings, debug):
    settings.DEBUG = debug
    client = Client(raise_request_exception=False)
    for path in ("/api/v1/boom", "/integration/v1/boom"):
        response = client.get(path)
        assert (response.status_code, response.json()) == (500, {"error": "Internal server error"})


def test_healthz(client, db):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
